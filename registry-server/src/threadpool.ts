// The size of libuv's thread pool, which runs every file-system call: one thread more than the
// cores, three at least, five at most, unless UV_THREADPOOL_SIZE is set. libuv reads it when the
// pool first starts, so this module is imported before anything else in main.ts.
//
// The extra thread is for the disk: a thread in fsync (~0.3 ms here, six per manifest PUT) holds
// no core, and the calls queued behind it wait. More threads than that cost wake-ups and
// switches (`finish_task_switch` and spin-unlock-irqrestore were ~30% of a manifest PUT storm's
// samples with 4 threads when a PUT made ~40 calls). Interleaved A/Bs on two cores, 6 rounds,
// after the metadata calls moved to fs-calls.ts: 3 threads against 2, manifest PUT 955 vs 807/s,
// small blob uploads 1180 vs 1017/s, 8 parallel pushes 845 vs 738 MB/s, GET by tag the same
// (7277 vs 7137/s); 4 threads: PUT like 3, GET by tag 6673 vs 7437/s (-10%). 6 threads, three
// A/Bs later on: manifest PUT +10-17% (its pool threads wait in flushes), small blob uploads
// -12-15% (751 vs 661/s, 1.76 vs 2.12 ms of CPU per request), 8 parallel pushes -8%.
import { availableParallelism } from "node:os";

export function threadPoolSize(env: NodeJS.ProcessEnv, cores: number): string {
  return env.UV_THREADPOOL_SIZE ?? String(Math.min(5, Math.max(3, cores + 1)));
}

process.env.UV_THREADPOOL_SIZE = threadPoolSize(process.env, availableParallelism());
