// The table of blob sizes behind storage usage and quotas: what a refresh lists and what this
// process reports (blobs added and deleted) must agree on each blob, or a blob is counted twice
// or a deleted one stays counted until the next refresh.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { Digest } from "../../src/reference";
import { StorageUsage } from "../../src/registry/usage";
import { FilesystemDriver } from "../../src/storage/filesystem";
import { paths } from "../../src/storage/paths";

const digestOf = (content: Buffer) => Digest.parse(`sha256:${createHash("sha256").update(content).digest("hex")}`);

describe("storage usage table", () => {
  let root: string;
  let driver: FilesystemDriver;
  before(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "usage-"));
    driver = new FilesystemDriver(root);
    await driver.init();
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  async function store(content: Buffer): Promise<Digest> {
    const digest = digestOf(content);
    await driver.putContent(paths.blobData(digest), content);
    return digest;
  }

  /** What BlobStore reports for a blob it stores: admitted, then settled with its size. */
  async function reportStored(usage: StorageUsage, digest: Digest, size: number): Promise<void> {
    await usage.admit(size, false);
    usage.settle(size, digest);
  }

  it("counts listed blobs once, and a listed blob deleted by this process at once", async () => {
    const usage = new StorageUsage(driver, { minFreeBytes: 0 });
    const a = await store(Buffer.alloc(1000, 1));
    const b = await store(Buffer.alloc(2500, 2));
    await usage.refresh();
    assert.deepEqual(usage.totals(), { bytes: 3500, blobs: 2 });

    // Reported by this process after the listing saw them: nothing changes, nothing is counted twice.
    await reportStored(usage, a, 1000);
    await reportStored(usage, b, 2500);
    assert.deepEqual(usage.totals(), { bytes: 3500, blobs: 2 });

    // Deleted: out of the totals without waiting for a refresh.
    await driver.delete(paths.blobDir(a));
    usage.deleted(a);
    assert.deepEqual(usage.totals(), { bytes: 2500, blobs: 1 });
    await usage.refresh();
    assert.deepEqual(usage.totals(), { bytes: 2500, blobs: 1 });
  });

  it("keeps what this process added when a refresh lists it again", async () => {
    const usage = new StorageUsage(driver, { minFreeBytes: 0 });
    await usage.refresh();
    const before = usage.totals();
    const c = await store(Buffer.alloc(4000, 3));
    await reportStored(usage, c, 4000);
    assert.deepEqual(usage.totals(), { bytes: before.bytes + 4000, blobs: before.blobs + 1 });
    await usage.refresh();
    assert.deepEqual(usage.totals(), { bytes: before.bytes + 4000, blobs: before.blobs + 1 });
    usage.deleted(c);
    assert.deepEqual(usage.totals(), before);
  });
});
