// Parsing of the identifiers that arrive in URLs: repository names, tags and digests.
// Nothing from a URL becomes part of a storage path without passing through here.
import { createHash, Hash } from "node:crypto";
import { RegistryError } from "./errors";

// distribution-spec "Pulling manifests": <name> and <reference> grammars.
const NAME_COMPONENT = "[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*";
const NAME_RE = new RegExp(`^${NAME_COMPONENT}(?:/${NAME_COMPONENT})*$`);
const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
const DIGEST_RE = /^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/;
export const MAX_NAME_LENGTH = 255;

/** Algorithms we can verify, with the exact encoded form each requires. */
const ALGORITHMS: Record<string, { hash: string; hex: RegExp }> = {
  sha256: { hash: "sha256", hex: /^[a-f0-9]{64}$/ },
  sha512: { hash: "sha512", hex: /^[a-f0-9]{128}$/ },
};

export function isValidRepoName(name: string): boolean {
  return name.length > 0 && name.length <= MAX_NAME_LENGTH && NAME_RE.test(name);
}

export function parseRepoName(name: string): string {
  if (!isValidRepoName(name)) {
    throw new RegistryError("NAME_INVALID", "invalid repository name", { name: name.slice(0, 300) });
  }
  return name;
}

export function isValidTag(tag: string): boolean {
  return TAG_RE.test(tag);
}

export class Digest {
  private constructor(
    readonly algorithm: string,
    readonly hex: string,
  ) {}

  /** Parses `alg:hex`; throws DIGEST_INVALID for bad syntax or an algorithm we cannot verify. */
  static parse(value: string): Digest {
    const m = DIGEST_RE.exec(value);
    if (!m) throw new RegistryError("DIGEST_INVALID", "invalid digest", { digest: value.slice(0, 200) });
    const alg = ALGORITHMS[m[1]];
    if (!alg) throw new RegistryError("DIGEST_INVALID", `unsupported digest algorithm ${m[1]}`, { digest: value.slice(0, 200) });
    if (!alg.hex.test(m[2])) throw new RegistryError("DIGEST_INVALID", "invalid digest encoding", { digest: value.slice(0, 200) });
    return new Digest(m[1], m[2]);
  }

  static tryParse(value: string): Digest | undefined {
    try {
      return Digest.parse(value);
    } catch {
      return undefined;
    }
  }

  static isDigest(value: string): boolean {
    return value.includes(":");
  }

  static fromHash(algorithm: string, hash: Hash): Digest {
    return new Digest(algorithm, hash.digest("hex"));
  }

  static of(algorithm: string, content: Buffer): Digest {
    return new Digest(algorithm, createHash(ALGORITHMS[algorithm].hash).update(content).digest("hex"));
  }

  newHash(): Hash {
    return createHash(ALGORITHMS[this.algorithm].hash);
  }

  equals(other: Digest): boolean {
    return this.algorithm === other.algorithm && this.hex === other.hex;
  }

  toString(): string {
    return `${this.algorithm}:${this.hex}`;
  }
}

/** A manifest reference from a URL: a tag or a digest. */
export type Reference = { kind: "tag"; tag: string } | { kind: "digest"; digest: Digest };

export function parseReference(value: string, invalidCode: "MANIFEST_INVALID" | "MANIFEST_UNKNOWN" | "DIGEST_INVALID" = "MANIFEST_UNKNOWN"): Reference {
  if (Digest.isDigest(value)) return { kind: "digest", digest: Digest.parse(value) };
  if (!isValidTag(value)) {
    throw new RegistryError(invalidCode, "invalid tag", { tag: value.slice(0, 200) });
  }
  return { kind: "tag", tag: value };
}
