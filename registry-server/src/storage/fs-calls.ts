// The file-system calls of the metadata path (small files, links, renames, directory syncs) as
// promises over Node's callback API, on plain file descriptors. fs/promises costs about twice
// the CPU per call (a FileHandle object per open file for the GC to track, and a stack trace
// captured for every error, even an expected ENOENT): measured at 32 calls in flight, a stat
// 4.4 vs 8.7 µs, a stat of a missing file 8.4 vs 18 µs. A manifest PUT makes about forty such
// calls. Large transfers keep their FileHandles (direct-io.ts, file-source.ts): few calls each.
import * as fs from "node:fs";
import { isMissing } from "./errno";

type Callback<T> = (err: NodeJS.ErrnoException | null, value: T) => void;

function call<T>(start: (done: Callback<T>) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    start((err, value) => (err ? reject(err) : resolve(value)));
  });
}

/** The call's value, or undefined when the path (or a directory on the way) does not exist. */
function unlessMissing<T>(start: (done: Callback<T>) => void): Promise<T | undefined> {
  return new Promise((resolve, reject) => {
    start((err, value) => {
      if (!err) resolve(value);
      else if (isMissing(err)) resolve(undefined);
      else reject(err);
    });
  });
}

export const statIfExists = (path: string): Promise<fs.Stats | undefined> => unlessMissing((done) => fs.stat(path, done));

/** Sets both times; false when the path does not exist. */
export const utimesIfExists = (path: string, time: Date): Promise<boolean> =>
  unlessMissing<true>((done) => fs.utimes(path, time, time, (err) => done(err, true))).then((ok) => ok === true);

export const rename = (from: string, to: string): Promise<void> => call((done) => fs.rename(from, to, (err) => done(err, undefined)));
export const mkdir = (path: string): Promise<void> => call((done) => fs.mkdir(path, (err) => done(err, undefined)));
export const open = (path: string, flags: string | number): Promise<number> => call((done) => fs.open(path, flags, done));
export const openIfExists = (path: string, flags: string | number): Promise<number | undefined> => unlessMissing((done) => fs.open(path, flags, done));
export const fsync = (fd: number): Promise<void> => call((done) => fs.fsync(fd, (err) => done(err, undefined)));
export const close = (fd: number): Promise<void> => call((done) => fs.close(fd, (err) => done(err, undefined)));

/**
 * Closes a descriptor, on the calling thread when `here` (a local file system, where closing a
 * file whose writes are already synced is a few microseconds of bookkeeping: a pool round trip
 * costs the event loop ten times that). Elsewhere (NFS flushes on close) in the pool.
 */
export function closeFd(fd: number, here: boolean): Promise<void> {
  if (!here) return close(fd);
  try {
    fs.closeSync(fd);
    return Promise.resolve();
  } catch (err) {
    return Promise.reject(err);
  }
}
export const fstat = (fd: number): Promise<fs.Stats> => call((done) => fs.fstat(fd, done));

/** Reads into buffer[offset..] from the file's position `position`; answers the bytes read. */
export const read = (fd: number, buffer: Buffer, offset: number, length: number, position: number): Promise<number> =>
  call((done) => fs.read(fd, buffer, offset, length, position, done));

/** Writes the whole buffer at the file's position `position` (looping over short writes). */
export async function writeAll(fd: number, data: Buffer, position: number): Promise<void> {
  for (let done = 0; done < data.length; ) {
    const at = done;
    done += await call<number>((cb) => fs.write(fd, data, at, data.length - at, position + at, cb));
  }
}
