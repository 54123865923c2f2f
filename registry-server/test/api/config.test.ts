import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ConfigError, loadConfig, parseAddr, parseDuration } from "../../src/config";

describe("configuration from registry:2's environment names", () => {
  it("defaults to :5000, /var/lib/registry, deletes enabled, info level", () => {
    const c = loadConfig({});
    assert.deepEqual(c.http.port, 5000);
    assert.equal(c.http.host, "");
    assert.equal(c.storage.rootDirectory, "/var/lib/registry");
    assert.equal(c.storage.deleteEnabled, true);
    assert.equal(c.log.level, "info");
    assert.equal(c.log.format, "json");
  });

  it("reads REGISTRY_HTTP_ADDR, the root directory, delete switch and log settings", () => {
    const c = loadConfig({
      REGISTRY_HTTP_ADDR: "127.0.0.1:5001",
      REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: "/data",
      REGISTRY_STORAGE_DELETE_ENABLED: "false",
      REGISTRY_LOG_LEVEL: "debug",
      REGISTRY_LOG_FORMATTER: "text",
      REGISTRY_HTTP_DRAINTIMEOUT: "1m30s",
    });
    assert.equal(c.http.host, "127.0.0.1");
    assert.equal(c.http.port, 5001);
    assert.equal(c.http.drainTimeoutMs, 90_000);
    assert.equal(c.storage.rootDirectory, "/data");
    assert.equal(c.storage.deleteEnabled, false);
    assert.equal(c.log.level, "debug");
    assert.equal(c.log.format, "text");
  });

  it("parses IPv6 addresses and durations", () => {
    assert.deepEqual(parseAddr("[::1]:5000", "X"), { host: "::1", port: 5000 });
    assert.equal(parseDuration("500ms", "X", 0), 500);
    assert.equal(parseDuration("2h", "X", 0), 7_200_000);
  });

  it("refuses bad values with a message naming the variable", () => {
    for (const env of [
      { REGISTRY_HTTP_ADDR: "5000" },
      { REGISTRY_HTTP_ADDR: "host:99999" },
      { REGISTRY_STORAGE_DELETE_ENABLED: "maybe" },
      { REGISTRY_LOG_LEVEL: "loud" },
      { REGISTRY_HTTP_DRAINTIMEOUT: "soon" },
      { REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: "" },
    ]) {
      assert.throws(() => loadConfig(env), (err: unknown) => err instanceof ConfigError && err.message.includes(Object.keys(env)[0]), JSON.stringify(env));
    }
  });
});
