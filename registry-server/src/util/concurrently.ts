// Walks of the store (garbage collection, fsck, the usage table) look up thousands of files, one
// thread-pool round trip each. One at a time, each waits for a pool thread to wake and then for
// the event loop to wake in turn: 44 µs per stat here, against 6 µs with eight in flight.

/** Lookups in flight at once in a walk of the store: the pool's threads stay busy, requests queue behind at most this many. */
export const WALK_CONCURRENCY = 8;
/**
 * Repositories checked at once by garbage collection and fsck (each looks up its entries
 * WALK_CONCURRENCY at a time). Each holds its parsed manifests meanwhile, so a few, not many:
 * on a store of 10,000 one-image repositories, one at a time took 16 s (gc) and 29 s (fsck).
 */
export const REPOSITORY_CONCURRENCY = 4;

/**
 * Calls `fn` for each item with at most `limit` calls in flight, starting them in order. Resolves
 * when all have finished; on a failure, starts no more, waits for those in flight and rejects
 * with the first error.
 */
export async function forEachConcurrently<T>(items: Iterable<T>, limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  const iterator = items[Symbol.iterator]();
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (!failure) {
      const next = iterator.next();
      if (next.done) return;
      try {
        await fn(next.value);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, limit) }, worker));
  if (failure) throw failure.error;
}

/** Like forEachConcurrently, answering what `fn` answered for each item, in the items' order. */
export async function mapConcurrently<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  await forEachConcurrently(items.keys(), limit, async (i) => {
    results[i] = await fn(items[i]);
  });
  return results;
}
