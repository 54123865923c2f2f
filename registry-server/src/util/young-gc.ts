// A young-generation collection every YOUNG_GC_BYTES of upload data received, process-wide.
//
// Every 64 KiB socket read of a request body is a new Buffer (node's HTTP parser copies it), and
// its memory is freed only when the young generation is collected, which happens when the
// 1 MiB young generation fills with *JavaScript* objects: about every 15 MB of upload data here.
// V8 counts that external memory against its global limit, and once the old generation has
// passed its activation threshold (it does after a few thousand manifests: caches, compiled
// code) the garbage of one interval is enough to start a full mark-compact: one after every
// young collection, 100 per three 512 MiB pushes (`--trace-gc`), which halved push throughput
// (750 -> 430 MB/s). Collecting the young generation on a byte schedule instead keeps that
// garbage to a few MiB: it costs about a quarter of a millisecond per collection (the young
// generation holds little that is alive), and gives the memory back as soon as it is garbage.
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

/** Upload bytes between two young collections. */
export const YOUNG_GC_BYTES = 4 << 20;

type GcFunction = (options: { type: "minor" | "major"; execution: "sync" | "async" }) => void;

let collect: GcFunction | undefined | null;
let received = 0;

function collector(): GcFunction | null {
  if (collect !== undefined) return collect;
  try {
    // The gc function exists only when the flag is set before the context is created.
    setFlagsFromString("--expose-gc");
    collect = runInNewContext("gc") as GcFunction;
  } catch {
    collect = null;
  }
  return collect;
}

/** Counts upload bytes received; collects the young generation when enough have come in. */
export function uploadReceived(bytes: number): void {
  received += bytes;
  if (received < YOUNG_GC_BYTES) return;
  received = 0;
  collector()?.({ type: "minor", execution: "sync" });
}

/**
 * A full collection, run in the background (incremental marking): buffers let go of after a burst
 * (staging arenas, hashing segments: idle-release.ts) are freed now, not at the next major
 * collection, which a server answering small requests may not reach for hours. Without it the
 * RSS stayed where the burst had left it (97.7 MiB six seconds after 8 parallel pushes).
 */
export function collectAll(): void {
  try {
    collector()?.({ type: "major", execution: "async" });
  } catch {
    // A V8 without these options: the next collection frees the memory instead.
  }
}
