import { parse as parseToml } from "smol-toml";
import { hostsDir, hostsToml } from "../components/mirror";

describe("the containerd hosts.toml", () => {
    const text = hostsToml("localhost:5000", "http://10.96.0.250:5000");

    test("parses as TOML with the server and one pull/resolve host over plain HTTP", () => {
        expect(parseToml(text)).toEqual({
            server: "http://localhost:5000",
            host: { "http://10.96.0.250:5000": { capabilities: ["pull", "resolve"] } },
        });
    });

    test("names the mirror by IP: a node's containerd cannot resolve cluster DNS", () => {
        expect(text).not.toMatch(/svc\.cluster\.local/);
        expect(text).not.toMatch(/https:/);
    });

    test("lives in the per-host directory under containerd's config_path", () => {
        expect(hostsDir("localhost:5000")).toBe("/etc/containerd/certs.d/localhost:5000");
    });
});
