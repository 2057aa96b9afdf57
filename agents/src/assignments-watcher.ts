/**
 * Follows the agent's desired state: KV `capa_allocs/<agentId>`. nats.js keeps a watch alive across reconnects,
 * but a watch can still end (consumer removed, bucket recreated, server restarted without the consumer); the loop
 * then opens a new one with backoff. A new watch starts with the key's latest value, which is all a level-triggered
 * reconcile needs, so nothing is lost between the two. `resync()` re-reads the key as a belt-and-braces check.
 */
import { decode } from "@capa/bus";
import type { AgentAssignments } from "@capa/domain";
import type { KV } from "@nats-io/kv";
import type { Logger } from "pino";

/** The part of a KV bucket the watcher uses. */
export type AssignmentsKv = Pick<KV, "watch" | "get">;

export type AssignmentsListener = (value: AgentAssignments | undefined, revision: number) => void;

export class AssignmentsWatcher {
  private kv: AssignmentsKv | undefined;
  private stopped = false;
  private revision = 0;
  private iterator: { stop(): void } | undefined;
  private loop: Promise<void> | undefined;
  private firstWatch: (() => void) | undefined;
  private wake: (() => void) | undefined;

  constructor(
    /** Opens (binds) the bucket; retried with the watch until it succeeds. */
    private readonly openKv: () => Promise<AssignmentsKv>,
    private readonly key: string,
    private readonly onValue: AssignmentsListener,
    private readonly logger: Logger,
  ) {}

  /** Starts watching; resolves once the first watch is open (or keeps retrying in the background). */
  async start(firstWatchTimeoutMs = 5_000): Promise<void> {
    const opened = new Promise<void>((resolve) => {
      this.firstWatch = resolve;
    });
    this.loop = this.run();
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise((resolve) => {
      timer = setTimeout(resolve, firstWatchTimeoutMs);
    });
    await Promise.race([opened, limit]);
    clearTimeout(timer);
  }

  /** Re-reads the key; delivers it when it is newer than what the watch delivered. */
  async resync(): Promise<void> {
    if (!this.kv || this.stopped) return;
    try {
      const entry = await this.kv.get(this.key);
      if (!entry || entry.revision <= this.revision) return;
      this.deliver(entry.operation === "PUT" ? entry.value : undefined, entry.revision);
    } catch (err) {
      this.logger.debug({ err }, "assignment resync failed");
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.iterator?.stop();
    this.wake?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    let backoff = 100;
    while (!this.stopped) {
      try {
        this.kv ??= await this.openKv();
        const iterator = await this.kv.watch({ key: this.key });
        this.iterator = iterator;
        this.firstWatch?.();
        backoff = 100;
        if (this.stopped) iterator.stop();
        for await (const entry of iterator) {
          this.deliver(entry.operation === "PUT" ? entry.value : undefined, entry.revision);
        }
        if (!this.stopped) this.logger.warn("assignment watch ended; watching again");
      } catch (err) {
        if (this.stopped) break;
        this.logger.warn({ err, backoffMs: backoff }, "cannot watch assignments; retrying");
      }
      if (this.stopped) break;
      await this.pause(backoff);
      backoff = Math.min(backoff * 2, 5_000);
    }
  }

  /** A backoff that stop() cuts short. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private deliver(bytes: Uint8Array | undefined, revision: number): void {
    // A re-opened watch replays the current value; delivering it again is harmless for a level-triggered reconcile.
    this.revision = revision;
    if (bytes === undefined || bytes.length === 0) {
      this.onValue(undefined, revision);
      return;
    }
    try {
      this.onValue(decode.assignments(bytes), revision);
    } catch (err) {
      // Keep acting on the last good value: a malformed write must not stop every task on this agent.
      this.logger.error({ err, revision }, "cannot decode assignments; keeping the previous desired state");
    }
  }
}
