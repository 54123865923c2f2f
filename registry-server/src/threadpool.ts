// The size of libuv's thread pool, which runs every file-system call: one thread per core, two at
// least, four at most (node's default), unless UV_THREADPOOL_SIZE is set. libuv reads it when
// the pool first starts, so this module is imported before anything else in main.ts.
//
// On the two-core machines the bench runs on, every extra thread is one more to wake and switch
// to per call (`finish_task_switch` and spin-unlock-irqrestore were ~30% of the samples of a
// manifest PUT storm). A/B of UV_THREADPOOL_SIZE=2 against 4, interleaved: manifest PUT 947 vs
// 814/s with 40% less system time, small blob uploads +7%, 8 parallel pushes +9%, pulls and
// large pushes unchanged; 8 threads: PUT 693 vs 1011/s.
import { availableParallelism } from "node:os";

export function threadPoolSize(env: NodeJS.ProcessEnv, cores: number): string {
  return env.UV_THREADPOOL_SIZE ?? String(Math.min(4, Math.max(2, cores)));
}

process.env.UV_THREADPOOL_SIZE = threadPoolSize(process.env, availableParallelism());
