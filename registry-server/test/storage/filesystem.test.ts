// The filesystem driver: the shared contract, plus what only a filesystem has (its .tmp
// directory, path confinement, file descriptors, a full volume).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, statfs, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, afterEach, before, beforeEach, describe, it } from "node:test";
import { PathNotFoundError, StorageFullError } from "../../src/storage/driver";
import { FilesystemDriver, isLocalFileSystem } from "../../src/storage/filesystem";
import { driverContract, readAll } from "./driver-contract";

async function makeFilesystemDriver(parent = tmpdir()): Promise<{ driver: FilesystemDriver; root: string; cleanup(): Promise<void> }> {
  const root = await mkdtemp(path.join(parent, "fs-driver-"));
  const driver = new FilesystemDriver(root);
  await driver.init();
  return { driver, root, cleanup: () => rm(root, { recursive: true, force: true }) };
}

driverContract("filesystem", makeFilesystemDriver);

function openDescriptors(): number {
  return readdirSync("/proc/self/fd").length;
}

describe("FilesystemDriver", () => {
  let fsd: Awaited<ReturnType<typeof makeFilesystemDriver>>;
  beforeEach(async () => {
    fsd = await makeFilesystemDriver();
  });
  afterEach(() => fsd.cleanup());

  it("writes putContent's temporary under <root>/.tmp, never beside the destination, and leaves none behind", async () => {
    const tmp = path.join(fsd.root, ".tmp");
    const put = fsd.driver.putContent("/dir/big", randomBytes(64 * 1024 * 1024));
    let done = false;
    void put.finally(() => {
      done = true;
    });
    const seenInTmp = new Set<string>();
    const seenBeside = new Set<string>();
    while (!done) {
      for (const n of await readdir(tmp)) seenInTmp.add(n);
      for (const n of await readdir(path.join(fsd.root, "dir")).catch(() => [])) seenBeside.add(n);
    }
    await put;
    assert.ok(seenInTmp.size > 0, "no temporary was seen in .tmp while a 64 MiB putContent ran");
    assert.deepEqual([...seenBeside].filter((n) => n !== "big"), []);
    assert.deepEqual(await readdir(tmp), []);
    assert.deepEqual(await fsd.driver.list("/"), ["dir"]);
  });

  it("places files in new directories when what it remembers of the tree is out of date", async () => {
    await fsd.driver.putContent("/a/b/c/one", "1");
    await fsd.driver.putContent("/a/b/c/two", "2");
    // Removed behind the driver's back (as by another process): /a/b was known to exist.
    await rm(path.join(fsd.root, "a"), { recursive: true });
    await fsd.driver.putContent("/a/b/d/three", "3");
    // Created behind its back: a non-empty directory below the deepest one it knows.
    await mkdir(path.join(fsd.root, "a/b/e/f"), { recursive: true });
    await writeFile(path.join(fsd.root, "a/b/e/f/other"), "x");
    await fsd.driver.putContent("/a/b/e/f/g/four", "4");
    await fsd.driver.putContent("/a/b/e/five", "5");
    assert.equal((await fsd.driver.getContent("/a/b/d/three")).toString(), "3");
    assert.equal((await fsd.driver.getContent("/a/b/e/f/g/four")).toString(), "4");
    assert.equal((await fsd.driver.getContent("/a/b/e/five")).toString(), "5");
    assert.equal((await fsd.driver.getContent("/a/b/e/f/other")).toString(), "x");
    assert.deepEqual((await fsd.driver.list("/a/b")).sort(), ["d", "e"]);
    // Directories it does not know under one it knows: taken for new, and they are not.
    await mkdir(path.join(fsd.root, "a/b/full"));
    await writeFile(path.join(fsd.root, "a/b/full/kept"), "k");
    await mkdir(path.join(fsd.root, "a/b/empty"));
    await fsd.driver.putContent("/a/b/full/six", "6");
    await fsd.driver.putContent("/a/b/empty/seven", "7");
    assert.deepEqual((await fsd.driver.list("/a/b/full")).sort(), ["kept", "six"]);
    assert.deepEqual(await fsd.driver.list("/a/b/empty"), ["seven"]);
    assert.deepEqual(await readdir(path.join(fsd.root, ".tmp")), []);
  });

  it("remembers directories it found by stat and touch, and copes when another process removes or replaces them", async () => {
    await mkdir(path.join(fsd.root, "s/t/u"), { recursive: true });
    await writeFile(path.join(fsd.root, "s/t/u/file"), "f");
    await fsd.driver.stat("/s/t/u/file");
    await fsd.driver.touch("/s/t/u/file");
    await fsd.driver.stat("/s/t");
    // Gone: the direct rename into /s/t/u fails, the driver looks again.
    await rm(path.join(fsd.root, "s"), { recursive: true });
    await fsd.driver.putContent("/s/t/u/new", "n");
    assert.deepEqual(await fsd.driver.list("/s/t/u"), ["new"]);
    // Replaced by a file: a clear error, nothing half-written.
    await rm(path.join(fsd.root, "s/t"), { recursive: true });
    await writeFile(path.join(fsd.root, "s/t"), "not a directory");
    await assert.rejects(fsd.driver.putContent("/s/t/u/again", "a"), /ENOTDIR|EEXIST|ENOTEMPTY/);
    assert.equal((await readFile(path.join(fsd.root, "s/t"))).toString(), "not a directory");
    assert.deepEqual(await readdir(path.join(fsd.root, ".tmp")), []);
    // A file where a new directory was guessed: the content was written in its stage, which goes.
    await fsd.driver.putContent("/v/one", "1");
    await writeFile(path.join(fsd.root, "v/w"), "a file");
    await assert.rejects(fsd.driver.putContent("/v/w/x/y", "y"), /ENOTDIR|EEXIST|ENOTEMPTY/);
    await assert.rejects(fsd.driver.publish([{ path: "/v/two", content: "2" }, { path: "/v/w/z", content: "z" }, { path: "/v/three", content: "3" }]), /ENOTDIR|EEXIST|ENOTEMPTY/);
    assert.deepEqual((await fsd.driver.list("/v")).sort(), ["one", "two", "w"]);
    assert.deepEqual(await readdir(path.join(fsd.root, ".tmp")), []);
  });

  it("opens a writer in a directory it knows without making it, and makes it again when it is gone", async () => {
    const first = await fsd.driver.writer("/r/_uploads/one", true);
    await first.write(Buffer.from("one"));
    await first.close();
    // Removed behind the driver's back (garbage collection of a repository, another process).
    await rm(path.join(fsd.root, "r"), { recursive: true });
    const second = await fsd.driver.writer("/r/_uploads/two", true);
    await second.write(Buffer.from("two"));
    await second.close();
    assert.equal((await readFile(path.join(fsd.root, "r/_uploads/two"))).toString(), "two");
    // Appending to an existing file continues at its end.
    const again = await fsd.driver.writer("/r/_uploads/two", true);
    assert.equal(again.size, 3);
    await again.write(Buffer.from("!"));
    await again.close();
    assert.equal((await readFile(path.join(fsd.root, "r/_uploads/two"))).toString(), "two!");
    // A file where the directory was: a clear error.
    await rm(path.join(fsd.root, "r"), { recursive: true });
    await writeFile(path.join(fsd.root, "r"), "not a directory");
    await assert.rejects(fsd.driver.writer("/r/_uploads/three", true), /ENOTDIR|EEXIST/);
  });

  it("answers from the disk for files it found or wrote recently (looked up synchronously): removed, replaced, rewritten, grown", async () => {
    const d = fsd.driver;
    await d.putContent("/hot/link", "first");
    assert.equal((await d.getContent("/hot/link")).toString(), "first");
    assert.equal((await d.stat("/hot/link")).size, 5);
    // Rewritten in place by another process.
    await writeFile(path.join(fsd.root, "hot/link"), "second!");
    assert.equal((await d.getContent("/hot/link")).toString(), "second!");
    assert.equal((await d.stat("/hot/link")).size, 7);
    // Grown past what one small read takes.
    const big = randomBytes(100_000);
    await writeFile(path.join(fsd.root, "hot/link"), big);
    assert.ok((await d.getContent("/hot/link")).equals(big));
    // Removed, then back.
    await rm(path.join(fsd.root, "hot/link"));
    await assert.rejects(d.stat("/hot/link"), PathNotFoundError);
    await assert.rejects(d.getContent("/hot/link"), PathNotFoundError);
    await writeFile(path.join(fsd.root, "hot/link"), "third");
    assert.equal((await d.getContent("/hot/link")).toString(), "third");
    // Touched: the time moves on the disk; once removed, touch says so.
    await utimes(path.join(fsd.root, "hot/link"), new Date(1e12), new Date(1e12));
    await d.touch("/hot/link");
    assert.ok((await d.stat("/hot/link")).modTime.getTime() > Date.now() - 60_000);
    await rm(path.join(fsd.root, "hot/link"));
    await assert.rejects(d.touch("/hot/link"), PathNotFoundError);
    await writeFile(path.join(fsd.root, "hot/link"), "third");
    // Replaced by a directory.
    await d.stat("/hot/link");
    await rm(path.join(fsd.root, "hot/link"));
    await mkdir(path.join(fsd.root, "hot/link"));
    assert.equal((await d.stat("/hot/link")).isDir, true);
    await assert.rejects(d.getContent("/hot/link"), /EISDIR/);
  });

  it("publishes several new files into the same new directory, each staged, none left in .tmp", async () => {
    await fsd.driver.putContent("/pub/known", "k");
    await fsd.driver.publish([
      { path: "/pub/new/dir/mediatype", content: "m" },
      { path: "/pub/new/dir/link", content: "l" },
      { path: "/pub/new/other/link", content: "o" },
    ]);
    assert.deepEqual((await fsd.driver.list("/pub/new/dir")).sort(), ["link", "mediatype"]);
    assert.equal((await fsd.driver.getContent("/pub/new/other/link")).toString(), "o");
    assert.deepEqual(await readdir(path.join(fsd.root, ".tmp")), []);
  });

  it("looks recent paths up synchronously only on local file systems", async () => {
    assert.deepEqual(
      [0xef53, 0x58465342, 0x01021994, 0x794c7630].map(isLocalFileSystem),
      [true, true, true, true],
      "ext4, xfs, tmpfs, overlayfs",
    );
    assert.deepEqual(
      [0x6969, 0xfe534d42, 0x65735546, 0x6a656a63, 0x01021997].map(isLocalFileSystem),
      [false, false, false, false, false],
      "NFS, SMB2, FUSE, virtiofs, 9p",
    );
    assert.equal(fsd.driver.synchronousLookups, isLocalFileSystem((await statfs(fsd.root)).type));
  });

  it("cleanTemporaries removes only temporaries older than the given age", async () => {
    const tmp = path.join(fsd.root, ".tmp");
    await writeFile(path.join(tmp, "old"), "left by a crash");
    await mkdir(path.join(tmp, "old-dir"));
    await writeFile(path.join(tmp, "fresh"), "being written now");
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    await utimes(path.join(tmp, "old"), twoHoursAgo, twoHoursAgo);
    await utimes(path.join(tmp, "old-dir"), twoHoursAgo, twoHoursAgo);
    assert.equal(await fsd.driver.cleanTemporaries(3600_000), 2);
    assert.deepEqual(await readdir(tmp), ["fresh"]);
  });

  it("refuses relative paths and paths with .. or NUL, touching nothing outside the root", async () => {
    const escape = `escape-${randomBytes(6).toString("hex")}`;
    const bad = [`/../${escape}`, `/a/../../${escape}`, "/a/..", "/..", `relative/${escape}`, `../${escape}`, "/nul\0byte"];
    for (const p of bad) {
      for (const attempt of [
        () => fsd.driver.putContent(p, "x"),
        () => fsd.driver.getContent(p),
        () => fsd.driver.writer(p, false),
        () => fsd.driver.delete(p),
        () => fsd.driver.move("/a/file", p),
        () => fsd.driver.list(p),
      ]) {
        await assert.rejects(attempt(), (err: unknown) => err instanceof Error && !(err instanceof PathNotFoundError) && /invalid storage path/.test(err.message), `path ${JSON.stringify(p)}`);
      }
    }
    assert.equal(existsSync(path.join(path.dirname(fsd.root), escape)), false);
    assert.deepEqual(await readdir(fsd.root), [".tmp"]);
  });

  it("closes the file descriptors of every source once it is closed", async () => {
    await fsd.driver.putContent("/fd/file", randomBytes(100_000));
    await fsd.driver.putContent("/fd/large", randomBytes(1024 * 1024));
    const before = openDescriptors();
    for (let i = 0; i < 100; i++) await readAll(fsd.driver, i % 2 ? "/fd/file" : "/fd/large");
    await new Promise((resolve) => setTimeout(resolve, 100));
    const leaked = openDescriptors() - before;
    assert.ok(leaked < 5, `${leaked} file descriptors still open after 100 reads`);
  });

  it("init refuses a root that is a file", async () => {
    await writeFile(path.join(fsd.root, "file"), "x");
    await assert.rejects(new FilesystemDriver(path.join(fsd.root, "file")).init(), /ENOTDIR/);
  });
});

describe("FilesystemDriver on a full volume", () => {
  // A 1 MiB tmpfs is a volume that fills up cheaply. Mounting needs root; without it these
  // tests fail rather than skip.
  let mountPoint = "";
  let fsd: Awaited<ReturnType<typeof makeFilesystemDriver>>;
  before(async () => {
    mountPoint = await mkdtemp(path.join(tmpdir(), "fs-driver-full-"));
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", mountPoint]);
  });
  after(async () => {
    if (mountPoint === "") return;
    execFileSync("umount", [mountPoint]);
    await rm(mountPoint, { recursive: true, force: true });
  });
  beforeEach(async () => {
    fsd = await makeFilesystemDriver(mountPoint);
  });
  afterEach(() => fsd.cleanup());

  it("putContent that does not fit throws StorageFullError and keeps the old content and no temporary", async () => {
    await fsd.driver.putContent("/full/file", "old");
    await assert.rejects(fsd.driver.putContent("/full/file", randomBytes(2 * 1024 * 1024)), StorageFullError);
    assert.equal((await fsd.driver.getContent("/full/file")).toString("utf8"), "old");
    assert.deepEqual(await readdir(path.join(fsd.root, ".tmp")), []);
  });

  it("a writer that does not fit throws StorageFullError, and cancel frees the space", async () => {
    const w = await fsd.driver.writer("/full/upload/data", false);
    await assert.rejects(async () => {
      for (let i = 0; i < 32; i++) await w.write(randomBytes(64 * 1024));
      await w.commit();
    }, StorageFullError);
    await w.cancel();
    await assert.rejects(fsd.driver.stat("/full/upload/data"), PathNotFoundError);
    await fsd.driver.putContent("/full/after", randomBytes(512 * 1024));
  });

  it("reports the free bytes of the volume", async () => {
    const free = await fsd.driver.freeBytes();
    assert.ok(free !== undefined && free > 0 && free <= 1024 * 1024, `freeBytes ${free}`);
  });
});
