// A stream that keeps what a download sends it, taking each write on the next turn of the loop
// (as a socket would, later), and tells the largest write it was given.
import { Writable } from "node:stream";

export function sink(): { stream: Writable; bytes(): Buffer; largest(): number } {
  const chunks: Buffer[] = [];
  let largest = 0;
  const stream = new Writable({
    write(chunk: Buffer, _enc, callback) {
      chunks.push(Buffer.from(chunk));
      largest = Math.max(largest, chunk.length);
      setImmediate(callback);
    },
  });
  return { stream, bytes: () => Buffer.concat(chunks), largest: () => largest };
}
