/**
 * Batches a task's stdout/stderr into LogChunks: one chunk per 32 KiB or per 100 ms, whichever comes first, so a
 * chatty task does not become one JetStream message per line and a quiet one still shows up promptly. A switch
 * between stdout and stderr closes the current chunk, which keeps their interleaving. `seq` counts chunks per task
 * from 1 across both streams, so a reader can restore the exact order.
 */
import type { LogChunk, LogStreamName } from "@capa/domain";

export interface LogShipperOptions {
  taskId: string;
  jobId: string;
  /** Hands a chunk over for publishing; false = not accepted (backlog full), the bytes are counted as dropped. */
  publish(chunk: LogChunk): boolean;
  maxChunkBytes?: number;
  flushIntervalMs?: number;
  now?: () => number;
}

export const LOG_CHUNK_BYTES = 32 * 1024;
export const LOG_FLUSH_MS = 100;

export class LogShipper {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private pendingStream: LogStreamName = "stdout";
  private seq = 0;
  private dropped = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly maxChunkBytes: number;
  private readonly flushIntervalMs: number;
  private readonly now: () => number;

  constructor(private readonly options: LogShipperOptions) {
    this.maxChunkBytes = options.maxChunkBytes ?? LOG_CHUNK_BYTES;
    this.flushIntervalMs = options.flushIntervalMs ?? LOG_FLUSH_MS;
    this.now = options.now ?? Date.now;
  }

  /** Chunks handed over so far (the last seq). */
  get chunks(): number {
    return this.seq;
  }

  /** Bytes not shipped because the backlog was full. */
  get droppedBytes(): number {
    return this.dropped;
  }

  write(stream: LogStreamName, data: Uint8Array): void {
    if (this.closed || data.byteLength === 0) return;
    if (stream !== this.pendingStream && this.pendingBytes > 0) this.flush();
    this.pendingStream = stream;
    let buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    while (buf.byteLength > 0) {
      const room = this.maxChunkBytes - this.pendingBytes;
      const part = buf.subarray(0, room);
      // Copy: the caller (a stream 'data' event) may reuse its buffer.
      this.pending.push(Buffer.from(part));
      this.pendingBytes += part.byteLength;
      buf = buf.subarray(part.byteLength);
      if (this.pendingBytes >= this.maxChunkBytes) this.flush();
    }
    if (this.pendingBytes > 0 && !this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.flush();
      }, this.flushIntervalMs);
    }
  }

  /** Ships what is pending now. */
  flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.dropped > 0 && this.emit("system", Buffer.from(`[capa] ${this.dropped} bytes of output dropped\n`))) {
      this.dropped = 0;
    }
    if (this.pendingBytes === 0) return;
    const data = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    if (!this.emit(this.pendingStream, data)) this.dropped += data.byteLength;
  }

  /** Flushes the tail and refuses further writes. Call before reporting the task's final state. */
  close(): void {
    this.flush();
    this.closed = true;
  }

  private emit(stream: LogStreamName, data: Buffer): boolean {
    const chunk: LogChunk = {
      taskId: this.options.taskId,
      jobId: this.options.jobId,
      stream,
      data,
      seq: this.seq + 1,
      atMs: this.now(),
    };
    if (!this.options.publish(chunk)) return false;
    this.seq++;
    return true;
  }
}
