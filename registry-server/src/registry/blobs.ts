// One global content-addressed blob store; repositories hold links into it (after
// distribution's linkedblobstore.go). Identical layers and cross-repository mounts cost no copy.
//
// Garbage collection runs while pushes go on. Every operation that creates a reference to a
// blob holds the maintenance lock shared and refreshes the blob's modification time, so the
// collector (which deletes only what is older than its grace period, re-checked under the
// lock held exclusively) never removes a blob that a push has just started to use.
import { exists, FileSource, ifExists, PublishStep, StorageDriver } from "../storage/driver";
import { paths } from "../storage/paths";
import { Digest } from "../reference";
import type { ReadWriteLock } from "../util/rw-lock";

/** Told of every blob the store adds or removes, so stored bytes are known without a walk (usage.ts). */
export interface BlobStoreListener {
  /**
   * A new blob of `bytes` is about to be stored; throws to refuse it, before anything is written.
   * `write`: its bytes are still to be written (a manifest), not a finished file moved into place.
   */
  admit(bytes: number, write: boolean): Promise<void>;
  /** The admitted blob is now stored under `digest`, or (undefined) was not stored after all. */
  settle(bytes: number, digest: Digest | undefined): void;
  deleted(digest: Digest): void;
}

export class BlobStore {
  constructor(
    private readonly driver: StorageDriver,
    readonly maintenance: ReadWriteLock,
    private readonly listener?: BlobStoreListener,
  ) {}

  /** Refreshes the blob's modification time; false when the blob is not in the store. */
  async touch(digest: Digest): Promise<boolean> {
    return exists(this.driver.touch(paths.blobData(digest)));
  }

  /** Size of the blob in the global store, or undefined when it is not there. */
  async size(digest: Digest): Promise<number | undefined> {
    return (await ifExists(this.driver.stat(paths.blobData(digest))))?.size;
  }

  /** The blob's data opened to send (downloads). */
  async open(digest: Digest): Promise<FileSource> {
    return this.driver.openSource(paths.blobData(digest));
  }

  async getContent(digest: Digest): Promise<Buffer> {
    return this.driver.getContent(paths.blobData(digest));
  }

  /**
   * Stores small content (a manifest) under its digest (only refreshed when it is already
   * there), then `then`: the files that refer to it, published with it in one go.
   */
  async putContent(digest: Digest, content: Buffer, then: PublishStep[] = []): Promise<void> {
    if ((await this.size(digest)) === content.length && (await this.touch(digest))) {
      if (then.length > 0) await this.driver.publish(then);
      return;
    }
    await this.store(digest, content.length, true, () => this.driver.publish([{ path: paths.blobData(digest), content }, ...then]));
  }

  /**
   * Publishes a verified, synced file as the blob, linked into the repository in the same
   * publication. When the blob already exists (two clients pushed the same layer at once) the
   * file is dropped: both pushes succeed, one copy stays.
   */
  async publish(source: string, digest: Digest, bytes: number, linkInto: string): Promise<void> {
    await this.maintenance.shared(async () => {
      const link = await this.linkSteps(linkInto, digest);
      if (await this.touch(digest)) {
        await this.driver.delete(source).catch(() => undefined);
        await this.driver.publish(link);
        return;
      }
      // The new blob keeps its file's time: make it now, so a collection running since before
      // the last PATCH does not take it for old garbage.
      await this.driver.touch(source);
      // A blob refused (quota) leaves none of its bytes behind.
      const dropSource = () => this.driver.delete(source).catch(() => undefined);
      await this.store(digest, bytes, false, () => this.driver.publish([{ path: paths.blobData(digest), from: source }, ...link]), dropSource);
    });
  }

  /** Runs the write that adds a blob once the listener admitted it, and tells it the outcome. */
  private async store(digest: Digest, bytes: number, write: boolean, doWrite: () => Promise<void>, onRefused?: () => Promise<void>): Promise<void> {
    if (!this.listener) return doWrite();
    try {
      await this.listener.admit(bytes, write);
    } catch (err) {
      await onRefused?.();
      throw err;
    }
    try {
      await doWrite();
    } catch (err) {
      this.listener.settle(bytes, undefined);
      throw err;
    }
    this.listener.settle(bytes, digest);
  }

  async delete(digest: Digest): Promise<void> {
    await this.driver.delete(paths.blobDir(digest));
    this.listener?.deleted(digest);
  }

  // Repository links.

  async isLinked(repo: string, digest: Digest): Promise<boolean> {
    return exists(this.driver.stat(paths.layerLink(repo, digest)));
  }

  /** What linking a blob writes: nothing when the link exists (it is refreshed: young links are kept by GC). */
  private async linkSteps(repo: string, digest: Digest): Promise<PublishStep[]> {
    if (await exists(this.driver.touch(paths.layerLink(repo, digest)))) return [];
    return [{ path: paths.layerLink(repo, digest), content: digest.toString() }];
  }

  /** Links a blob that is already in the store (cross-repository mount); false when it is not. */
  async mount(repo: string, digest: Digest): Promise<boolean> {
    return this.maintenance.shared(async () => {
      if (!(await this.touch(digest))) return false;
      await this.driver.publish(await this.linkSteps(repo, digest));
      return true;
    });
  }

  async unlink(repo: string, digest: Digest): Promise<boolean> {
    return exists(this.driver.delete(paths.layerDir(repo, digest)));
  }
}
