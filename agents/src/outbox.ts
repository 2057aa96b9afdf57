/**
 * Durable-delivery queue for task events (status, logs, usage) to JetStream. One FIFO per task keeps each task's
 * events in order (logs before the final status, starting before running); a failed publish is retried with
 * backoff until it is acknowledged, which is safe because every message carries a msgID the stream dedupes on.
 * Across a NATS outage the queue simply waits; logs are the only thing it ever drops (over a byte cap), never
 * status or usage, so a noisy task cannot exhaust the agent's memory.
 */
import type { Logger } from "pino";

export interface JsPublisher {
  publish(subject: string, data: Uint8Array, options: { msgID: string; timeout?: number }): Promise<unknown>;
}

export type OutboxKind = "status" | "log" | "usage";

export interface OutboxMessage {
  subject: string;
  data: Uint8Array;
  msgID: string;
  kind: OutboxKind;
}

export interface OutboxOptions {
  logger: Logger;
  /** Per task; log messages beyond this many queued bytes are refused. Default 8 MiB. */
  maxQueuedLogBytes?: number;
  publishTimeoutMs?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Told when a message is acknowledged, with the time since it was queued (metrics: report lag). */
  onAcked?: (kind: OutboxKind, lagMs: number) => void;
  /** Told when a publish failed and will be retried. */
  onRetry?: (kind: OutboxKind) => void;
}

interface Lane {
  queue: OutboxMessage[];
  logBytes: number;
  pumping: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms).unref?.());

export class Outbox {
  private readonly lanes = new Map<string, Lane>();
  private readonly idleWaiters = new Set<() => void>();
  private closed = false;
  private readonly maxQueuedLogBytes: number;
  private readonly queuedAt = new WeakMap<OutboxMessage, number>();

  constructor(
    private readonly js: JsPublisher,
    private readonly options: OutboxOptions,
  ) {
    this.maxQueuedLogBytes = options.maxQueuedLogBytes ?? 8 * 1024 * 1024;
  }

  /** Queues a message behind the task's earlier ones; false when a log message was refused (backlog full). */
  enqueue(taskId: string, message: OutboxMessage): boolean {
    if (this.closed) return false;
    let lane = this.lanes.get(taskId);
    if (!lane) {
      lane = { queue: [], logBytes: 0, pumping: false };
      this.lanes.set(taskId, lane);
    }
    if (message.kind === "log") {
      if (lane.logBytes + message.data.byteLength > this.maxQueuedLogBytes) return false;
      lane.logBytes += message.data.byteLength;
    }
    lane.queue.push(message);
    this.queuedAt.set(message, performance.now());
    if (!lane.pumping) void this.pump(taskId, lane);
    return true;
  }

  /** Messages of every task not yet acknowledged. */
  queued(): number {
    let n = 0;
    for (const lane of this.lanes.values()) n += lane.queue.length;
    return n;
  }

  /** True while the task has unacknowledged messages. */
  busy(taskId: string): boolean {
    return (this.lanes.get(taskId)?.queue.length ?? 0) > 0;
  }

  /** Resolves when every queue is empty, or after `timeoutMs` (false then). */
  async drain(timeoutMs: number): Promise<boolean> {
    if (this.lanes.size === 0) return true;
    let timer: NodeJS.Timeout | undefined;
    let resolveIdle = () => {};
    const idle = new Promise<boolean>((resolve) => {
      resolveIdle = () => resolve(true);
      this.idleWaiters.add(resolveIdle);
    });
    const expired = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    const result = await Promise.race([idle, expired]);
    clearTimeout(timer);
    this.idleWaiters.delete(resolveIdle);
    return result;
  }

  /** Stops retrying; whatever is still queued is abandoned (the stream dedupes if a later agent re-sends it). */
  close(): void {
    this.closed = true;
    for (const lane of this.lanes.values()) lane.queue.length = 0;
  }

  private async pump(taskId: string, lane: Lane): Promise<void> {
    lane.pumping = true;
    let backoff = this.options.minBackoffMs ?? 100;
    while (lane.queue.length > 0 && !this.closed) {
      const message = lane.queue[0]!;
      try {
        await this.js.publish(message.subject, message.data, {
          msgID: message.msgID,
          timeout: this.options.publishTimeoutMs ?? 5_000,
        });
        lane.queue.shift();
        if (message.kind === "log") lane.logBytes -= message.data.byteLength;
        this.options.onAcked?.(message.kind, performance.now() - (this.queuedAt.get(message) ?? performance.now()));
        backoff = this.options.minBackoffMs ?? 100;
      } catch (err) {
        this.options.onRetry?.(message.kind);
        this.options.logger.warn(
          { err, taskId, subject: message.subject, msgID: message.msgID },
          "publish failed; retrying",
        );
        await sleep(backoff);
        backoff = Math.min(backoff * 2, this.options.maxBackoffMs ?? 5_000);
      }
    }
    lane.pumping = false;
    if (lane.queue.length === 0) this.lanes.delete(taskId);
    if (this.lanes.size === 0) for (const wake of [...this.idleWaiters]) wake();
  }
}
