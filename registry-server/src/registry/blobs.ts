// One global content-addressed blob store; repositories hold links into it (after
// distribution's linkedblobstore.go). Identical layers and cross-repository mounts cost no copy.
import type { Readable } from "node:stream";
import { isNotFound, StorageDriver } from "../storage/driver";
import { paths } from "../storage/paths";
import { Digest } from "../reference";

export class BlobStore {
  constructor(private readonly driver: StorageDriver) {}

  /** Size of the blob in the global store, or undefined when it is not there. */
  async size(digest: Digest): Promise<number | undefined> {
    try {
      return (await this.driver.stat(paths.blobData(digest))).size;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async read(digest: Digest, start?: number, end?: number): Promise<Readable> {
    return this.driver.reader(paths.blobData(digest), start, end);
  }

  async getContent(digest: Digest): Promise<Buffer> {
    return this.driver.getContent(paths.blobData(digest));
  }

  /** Stores small content (a manifest) under its digest; a no-op when it is already there. */
  async putContent(digest: Digest, content: Buffer): Promise<void> {
    if ((await this.size(digest)) === content.length) return;
    await this.driver.putContent(paths.blobData(digest), content);
  }

  /**
   * Publishes a verified, synced file as the blob. When the blob already exists (two clients
   * pushed the same layer at once) the file is dropped: both pushes succeed, one copy stays.
   */
  async publish(source: string, digest: Digest): Promise<void> {
    if ((await this.size(digest)) !== undefined) {
      await this.driver.delete(source).catch(() => undefined);
      return;
    }
    await this.driver.move(source, paths.blobData(digest));
  }

  async delete(digest: Digest): Promise<void> {
    await this.driver.delete(paths.blobDir(digest));
  }

  // Repository links.

  async isLinked(repo: string, digest: Digest): Promise<boolean> {
    try {
      await this.driver.stat(paths.layerLink(repo, digest));
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  async link(repo: string, digest: Digest): Promise<void> {
    if (await this.isLinked(repo, digest)) return;
    await this.driver.putContent(paths.layerLink(repo, digest), digest.toString());
  }

  async unlink(repo: string, digest: Digest): Promise<boolean> {
    try {
      await this.driver.delete(paths.layerDir(repo, digest));
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /** Size of a blob that is linked into the repository, or undefined. */
  async linkedSize(repo: string, digest: Digest): Promise<number | undefined> {
    if (!(await this.isLinked(repo, digest))) return undefined;
    return this.size(digest);
  }
}
