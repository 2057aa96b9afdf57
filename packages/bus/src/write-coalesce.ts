/**
 * A CPU fix for @nats-io/nats-core 3.x: one socket write per tick of the event loop, not one per await hop.
 * `ProtocolHandler.sendCommand` buffers every outbound message and, when the buffer was empty, flushes it in a
 * microtask. A process whose sends are spread over async chains (the scheduler: a KV put here, a JetStream ack
 * there, each after an `await`) thus flushes almost every message on its own: one `socket.write` (a syscall, a
 * write request, a callback and a promise) per message, measured at 13 % of the scheduler's CPU under
 * `npm run bench:e2e`.
 *
 * The replacement does what `sendCommand` does but flushes in `setImmediate`: after every callback and microtask
 * of this turn of the loop, so everything sent in one turn leaves in one write. Nothing else changes: the buffer
 * is still flushed inline once it holds `pendingLimit` bytes, a `flush()` (PING) still writes everything before
 * it at once, and what is buffered while disconnected is still written on reconnect. The delay is that of one
 * turn (the I/O callbacks already due), not a timer. `close()` flushes the buffer first, so what was published
 * before a close is written before the socket goes (the microtask flush raced the close's own writes).
 *
 * Applied only when the class still has the shape read here (a later nats.js may change it; then nothing is done).
 */
import { ProtocolHandler, TE } from "@nats-io/nats-core/internal";

interface ProtocolShape {
  outbound: { length(): number; size(): number; fill(data: Uint8Array, ...more: Uint8Array[]): void };
  pendingLimit: number;
  flushPending(): void;
  sendCommand(cmd: string | Uint8Array, ...payloads: Uint8Array[]): void;
  close(err?: Error): Promise<void>;
}

let installed = false;

/** True once installed (false when nats-core's shape was not the one this mirrors). */
export let writeCoalescing = false;

export function installWriteCoalescing(): void {
  if (installed) return;
  installed = true;
  const proto = ProtocolHandler?.prototype as unknown as ProtocolShape | undefined;
  if (typeof proto?.sendCommand !== "function" || typeof proto.close !== "function") return;
  if (typeof proto.flushPending !== "function" || typeof TE?.encode !== "function") return;
  // Only the version whose source this mirrors: fill the buffer, flush in a microtask when it was empty, inline
  // once it is over the limit.
  const source = Function.prototype.toString.call(proto.sendCommand);
  if (
    !/const len = this\.outbound\.length\(\)/.test(source) ||
    !/this\.outbound\.fill\(buf, \.\.\.payloads\)/.test(source) ||
    !/if \(len === 0\) \{\s*queueMicrotask\(\(\) => \{\s*this\.flushPending\(\);\s*\}\);\s*\}/.test(source) ||
    !/this\.outbound\.size\(\) >= this\.pendingLimit/.test(source)
  )
    return;
  proto.sendCommand = function (this: ProtocolShape, cmd, ...payloads): void {
    const len = this.outbound.length();
    this.outbound.fill(typeof cmd === "string" ? TE.encode(cmd) : cmd, ...payloads);
    if (len === 0) setImmediate(() => this.flushPending());
    else if (this.outbound.size() >= this.pendingLimit) this.flushPending();
  };
  const close = proto.close;
  proto.close = function (this: ProtocolShape, err?: Error): Promise<void> {
    this.flushPending();
    return close.call(this, err);
  };
  writeCoalescing = true;
}
