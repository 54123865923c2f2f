// Downloads from the filesystem driver: a file is sent through a ring of reused buffers,
// read with O_DIRECT (past the page cache, like the uploads that wrote it: direct-io.ts) when the
// file is large and staging slots are free, buffered otherwise.
import type * as fs from "node:fs/promises";
import type { Writable } from "node:stream";
import { DIRECT_ALIGN, SLOT_BYTES, slotPool } from "./direct-io";
import type { FileSource } from "./driver";
import { isUnsupported } from "./errno";
import { requestMemory } from "../util/memory-budget";

/** Buffers a download holds at once: being read into, or in the stream's hands. */
const SENDS_IN_FLIGHT = 4;
/**
 * Reads in flight at once. Two keep the disk busy while the socket takes a buffer: O_DIRECT
 * reads of 1 MiB here ran at 1.1 GB/s one at a time, 1.3-1.5 GB/s two at a time (512 KiB: 1.15-1.2).
 */
const READS_AHEAD = 2;
/** Buffered downloads' buffers (SLOT_BYTES) kept between downloads. */
const spareBuffers: Buffer[] = [];
/** A download's buffers when the request memory budget has no room (and smaller downloads' own). */
const SMALL_BUFFER_BYTES = 32 << 10;
/** Buffers a download may hold without the budget: one in the stream's hands while the next is read. */
const MIN_BUFFERS = 2;
/** Where a download's buffer came from: the slot pool, the request memory budget, or its own (small). */
type Origin = "slot" | "budget" | "own";

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
    /** Every buffer this download holds (in the ring, being read into, in the stream) and where it came from. */
    const held = new Map<Buffer, Origin>();
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
      if (finished) this.release(buf, held);
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
          const buf = ring.pop() ?? this.newBuffer(bufferBytes, held);
          // None to be had: the buffers this download holds come back in turn.
          if (!buf) break;
          const slot = held.get(buf) === "slot";
          const skip = slot ? readPos % DIRECT_ALIGN : 0;
          const length = Math.min(buf.length - skip, end - readPos + 1);
          const read = this.readInto(buf, slot, readPos, skip, length);
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
      for (const buf of ring) this.release(buf, held);
      // A response whose socket is destroyed but has not emitted 'close' yet drops a write without
      // calling back (node's OutgoingMessage._writeRaw), and its slot was lost (seen once, in the
      // abandoned-downloads test). Once the stream has closed nothing holds these buffers.
      if (gone && inStream.size > 0) {
        setImmediate(() => {
          for (const buf of inStream) this.release(buf, held);
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

  /**
   * A buffer for the next read: a slot when reading direct (and one is free); else one kept from an
   * earlier download or a new one, as long as the request memory budget has room for it; else,
   * for a download holding fewer than two, a small one (every download keeps moving, and many at
   * once stay within the budget plus a few KiB each). Undefined when the download must wait for
   * one of its own to come back.
   */
  private newBuffer(bytes: number, held: Map<Buffer, Origin>): Buffer | undefined {
    if (this.directOk) {
      const slot = slotPool.takeOne();
      if (slot) {
        held.set(slot, "slot");
        return slot;
      }
    }
    let buf: Buffer | undefined;
    let origin: Origin = "own";
    if (bytes <= SMALL_BUFFER_BYTES) buf = Buffer.allocUnsafe(bytes);
    else if (requestMemory.tryTake(bytes)) {
      origin = "budget";
      buf = (bytes === SLOT_BYTES ? spareBuffers.pop() : undefined) ?? Buffer.allocUnsafeSlow(bytes);
    } else if (held.size < MIN_BUFFERS) buf = Buffer.allocUnsafeSlow(SMALL_BUFFER_BYTES);
    if (buf) held.set(buf, origin);
    return buf;
  }

  private release(buf: Buffer, held: Map<Buffer, Origin>): void {
    const origin = held.get(buf);
    held.delete(buf);
    if (origin === "slot") slotPool.give(buf);
    else if (origin === "budget") {
      requestMemory.give(buf.length);
      if (buf.length === SLOT_BYTES && spareBuffers.length < SENDS_IN_FLIGHT) spareBuffers.push(buf);
    }
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
