// Feeding a writer the way a socket would: a buffer in chunks, each write awaited.

export async function writeAll(w: { write(c: Buffer): Promise<unknown> }, content: Buffer, chunk = 65_536): Promise<void> {
  for (let off = 0; off < content.length; off += chunk) await w.write(content.subarray(off, off + chunk));
}
