// Downloads from the filesystem driver: a file is sent through a ring of reused buffers,
// read with O_DIRECT (past the page cache, like the uploads that wrote it: direct-io.ts) when the
// file is large and staging slots are free, buffered otherwise.
import type * as fs from "node:fs/promises";
import type { Writable } from "node:stream";
import { DIRECT_ALIGN, SLOT_BYTES, slotPool } from "./direct-io";
import type { FileSource } from "./driver";
import { isUnsupported } from "./errno";

/** Buffers a download holds at once: being read into, or in the stream's hands. */
const SENDS_IN_FLIGHT = 4;
/**
 * Reads in flight at once. Two keep the disk busy while the socket takes a buffer: O_DIRECT
 * reads of 1 MiB here ran at 1.1 GB/s one at a time, 1.3-1.5 GB/s two at a time (512 KiB: 1.15-1.2).
 */
const READS_AHEAD = 2;
/** Buffered downloads' buffers (SLOT_BYTES) kept between downloads. */
const spareBuffers: Buffer[] = [];

/**
 * Sends a file through a ring of SENDS_IN_FLIGHT reused buffers of SLOT_BYTES: a buffer is read into
 * again only once the stream has taken the write made from it. createReadStream allocates a
 * new buffer per read instead, and up to 64 MiB of them waited for the GC during a pull
 * (4 pulls of 512 MiB to curl: peak RSS 86 -> 68 MiB, server CPU down by a fifth).
 *
 * With a `direct` handle (O_DIRECT), reads start on a block boundary into page-aligned slots
 * from the slot pool and the bytes before `start` are skipped. A file written past the page
 * cache read back through it costs a newly allocated page per 4 KiB: 450 vs 850 MB/s for a
 * 256 MiB pull here, with 8x the system time.
 */
export class FilesystemFileSource implements FileSource {
  private closed = false;
  /** False once a direct read was refused (the handle stays open until close). */
  private directOk: boolean;

  constructor(
    private readonly path: string,
    private readonly fh: fs.FileHandle,
    readonly size: number,
    private readonly direct?: fs.FileHandle,
    /** Called when the file system refuses a direct read: buffered from then on. */
    private readonly onUnsupported: () => void = () => undefined,
  ) {
    this.directOk = direct !== undefined;
  }

  async sendTo(out: Writable, start: number, end: number): Promise<void> {
    if (start > end) return;
    const bufferBytes = Math.min(SLOT_BYTES, end - start + 1);
    const ring: Buffer[] = [];
    const slots = new Set<Buffer>();
    let outstanding = 0;
    let finished = false;
    let wake: (() => void) | undefined;
    let gone = out.destroyed || out.writableEnded;
    const onClose = () => {
      gone = true;
      wake?.();
    };
    out.on("close", onClose);
    /** Buffers handed to the stream whose write has not called back yet. */
    const inStream = new Set<Buffer>();
    const returned = (buf: Buffer) => {
      // Released already: the stream closed without calling back (see the end).
      if (!inStream.delete(buf)) return;
      outstanding--;
      // A write the stream completes after the download ended (a client gone) still frees its slot.
      if (finished) this.release(buf, slots);
      else ring.push(buf);
      wake?.();
    };
    const waitForReturn = () =>
      new Promise<void>((resolve) => {
        wake = () => {
          wake = undefined;
          resolve();
        };
      });
    // Reads run up to READS_AHEAD ahead of the stream, in order; each is for a known range.
    const queued: { buf: Buffer; read: Promise<Buffer> }[] = [];
    let readPos = start;
    try {
      while (!gone && (readPos <= end || queued.length > 0)) {
        while (readPos <= end && queued.length < READS_AHEAD && outstanding + queued.length < SENDS_IN_FLIGHT) {
          const buf = ring.pop() ?? this.newBuffer(bufferBytes, slots);
          const skip = slots.has(buf) ? readPos % DIRECT_ALIGN : 0;
          const length = Math.min(buf.length - skip, end - readPos + 1);
          const read = this.readInto(buf, slots.has(buf), readPos, skip, length);
          // Handled when its turn comes; until then a failure must not count as unhandled (it would end the process).
          read.catch(() => undefined);
          queued.push({ buf, read });
          readPos += length;
        }
        const next = queued.shift();
        if (!next) {
          await waitForReturn();
          continue;
        }
        const view = await next.read;
        outstanding++;
        inStream.add(next.buf);
        out.write(view, () => returned(next.buf));
      }
      while (outstanding > 0 && !gone) await waitForReturn();
    } finally {
      finished = true;
      out.off("close", onClose);
      // Reads still running are waited for before their buffers are reused.
      for (const { buf, read } of queued) {
        await read.catch(() => undefined);
        ring.push(buf);
      }
      // Buffers still in the stream's hands come back through `returned`; those here are freed now.
      for (const buf of ring) this.release(buf, slots);
      // A response whose socket is destroyed but has not emitted 'close' yet drops a write without
      // calling back (node's OutgoingMessage._writeRaw), and its slot was lost (seen once, in the
      // abandoned-downloads test). Once the stream has closed nothing holds these buffers.
      if (gone && inStream.size > 0) {
        setImmediate(() => {
          for (const buf of inStream) this.release(buf, slots);
          inStream.clear();
        });
      }
    }
  }

  /**
   * Reads bytes [position, position + length) into `buf`: a slot is read direct from the block
   * boundary `skip` bytes before (a whole slot), anything else buffered. Answers the bytes' view.
   */
  private async readInto(buf: Buffer, slot: boolean, position: number, skip: number, length: number): Promise<Buffer> {
    let got: number | undefined;
    if (slot && this.directOk) got = await this.readDirect(buf, position - skip);
    if (got === undefined) {
      // Buffered (the slot, too, when O_DIRECT was refused): into the same place in the buffer.
      let done = 0;
      while (done < length) {
        const { bytesRead } = await this.fh.read(buf, skip + done, length - done, position + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      got = skip + done;
    }
    if (got - skip < length) throw new Error(`${this.path} ends at ${position + Math.max(got - skip, 0)}, before byte ${position + length - 1}`);
    return buf.subarray(skip, skip + length);
  }

  /** A slot when reading direct (and one is free), else a buffer kept from an earlier download, else a new one. */
  private newBuffer(bytes: number, slots: Set<Buffer>): Buffer {
    if (this.directOk) {
      const slot = slotPool.takeOne();
      if (slot) {
        slots.add(slot);
        return slot;
      }
    }
    if (bytes === SLOT_BYTES) return spareBuffers.pop() ?? Buffer.allocUnsafeSlow(bytes);
    return Buffer.allocUnsafe(bytes);
  }

  private release(buf: Buffer, slots: Set<Buffer>): void {
    if (slots.delete(buf)) slotPool.give(buf);
    else if (buf.length === SLOT_BYTES && spareBuffers.length < SENDS_IN_FLIGHT) spareBuffers.push(buf);
  }

  /** Reads a slot's worth from an aligned position; undefined when O_DIRECT is refused (then buffered from here on). */
  private async readDirect(slot: Buffer, position: number): Promise<number | undefined> {
    try {
      return (await (this.direct as fs.FileHandle).read(slot, 0, SLOT_BYTES, position)).bytesRead;
    } catch (err) {
      if (!isUnsupported(err)) throw err;
      if (this.directOk) this.onUnsupported();
      this.directOk = false;
      return undefined;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([this.fh.close(), this.direct?.close()]);
  }
}
