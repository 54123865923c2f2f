import { execFileSync } from "child_process";
import { createHash, randomBytes } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { gzipSync } from "zlib";

export interface OciImage {
    /** Digest of the image manifest, as a registry and containerd will report it. */
    readonly manifestDigest: string;
    readonly tag: string;
}

const sha256 = (data: Buffer | string) => `sha256:${createHash("sha256").update(data).digest("hex")}`;

/**
 * Writes a one-layer image for this machine's platform as an OCI image layout in `dir`;
 * the layer holds a file with random content, so its digests are unique to this run.
 */
export function writeOciLayout(dir: string, tag: string): OciImage {
    const blobs = path.join(dir, "blobs", "sha256");
    fs.mkdirSync(blobs, { recursive: true });
    const putBlob = (data: Buffer | string) => {
        const digest = sha256(data);
        fs.writeFileSync(path.join(blobs, digest.slice("sha256:".length)), data);
        return { digest, size: Buffer.byteLength(data) };
    };

    const rootfs = path.join(dir, "..", `${path.basename(dir)}-rootfs`);
    fs.mkdirSync(rootfs);
    fs.writeFileSync(path.join(rootfs, "hello.txt"), `hello from the mirror test ${randomBytes(8).toString("hex")}\n`);
    const tar = execFileSync("tar", ["-C", rootfs, "-cf", "-", "hello.txt"]);
    fs.rmSync(rootfs, { recursive: true });

    const layer = putBlob(gzipSync(tar));
    const config = putBlob(JSON.stringify({
        architecture: process.arch === "x64" ? "amd64" : process.arch,
        os: "linux",
        config: {},
        rootfs: { type: "layers", diff_ids: [sha256(tar)] },
    }));
    const manifest = JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
        layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", ...layer }],
    });
    const manifestBlob = putBlob(manifest);
    fs.writeFileSync(path.join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    fs.writeFileSync(path.join(dir, "index.json"), JSON.stringify({
        schemaVersion: 2,
        manifests: [{
            mediaType: "application/vnd.oci.image.manifest.v1+json",
            ...manifestBlob,
            annotations: { "org.opencontainers.image.ref.name": tag },
        }],
    }));
    return { manifestDigest: manifestBlob.digest, tag };
}
