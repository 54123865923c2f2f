// The registry's domain layer, assembled over one storage driver. The HTTP layer talks only to
// this; it never sees paths or the driver.
import { ifExists, StorageDriver } from "../storage/driver";
import { paths } from "../storage/paths";
import { ReadWriteLock } from "../util/rw-lock";
import { BlobStore, BlobStoreListener } from "./blobs";
import { Catalog } from "./catalog";
import { GarbageCollector } from "./gc";
import { ManifestStore } from "./manifests";
import { ReferrerIndex } from "./referrers";
import { TagStore } from "./tags";
import { CapacityCheck, UploadStore } from "./uploads";

export interface RegistryOptions {
  capacity?: CapacityCheck;
  /** Told of every blob added or deleted (storage usage, quota). */
  blobListener?: BlobStoreListener;
}

export class Registry {
  /** Held shared by pushes that publish references, exclusively by garbage collection. */
  readonly maintenance = new ReadWriteLock();
  readonly blobs: BlobStore;
  readonly uploads: UploadStore;
  readonly tags: TagStore;
  readonly referrers: ReferrerIndex;
  readonly catalog: Catalog;
  readonly manifests: ManifestStore;
  readonly gc: GarbageCollector;

  constructor(
    readonly driver: StorageDriver,
    options: RegistryOptions = {},
  ) {
    this.blobs = new BlobStore(driver, this.maintenance, options.blobListener);
    this.uploads = new UploadStore(driver, this.blobs, options.capacity);
    this.tags = new TagStore(driver);
    this.referrers = new ReferrerIndex(driver);
    this.catalog = new Catalog(driver);
    this.manifests = new ManifestStore(driver, this.blobs, this.tags, this.referrers, this.catalog);
    this.gc = new GarbageCollector(this);
  }

  async repositoryExists(name: string): Promise<boolean> {
    return (await ifExists(this.driver.stat(paths.repo(name))))?.isDir ?? false;
  }

  /** Whether the storage answers at all (the readiness of GET /v2/). */
  async healthy(): Promise<boolean> {
    try {
      return (await this.driver.stat("/")).isDir;
    } catch {
      return false;
    }
  }
}
