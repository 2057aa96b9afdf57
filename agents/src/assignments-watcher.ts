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
  private firstValue: (() => void) | undefined;
  /** A value (or the key's absence) has been delivered. */
  private known = false;
  private wake: (() => void) | undefined;

  constructor(
    /** Opens (binds) the bucket; retried with the watch until it succeeds. */
    private readonly openKv: () => Promise<AssignmentsKv>,
    private readonly key: string,
    private readonly onValue: AssignmentsListener,
    private readonly logger: Logger,
    /** Each successful read or update of the key: the scheduler's state is reachable (fence.ts). */
    private readonly onContact: () => void = () => undefined,
  ) {}

  /**
   * Reads the current value (delivering it, or `undefined` when there is no key yet), then watches. Resolves once
   * that first value is delivered, so the caller never acts on a desired state it has not read; if NATS is not
   * reachable it keeps retrying in the background and resolves after `firstValueTimeoutMs`.
   */
  async start(firstValueTimeoutMs = 5_000): Promise<void> {
    const known = new Promise<void>((resolve) => {
      this.firstValue = resolve;
    });
    this.loop = this.run();
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise((resolve) => {
      timer = setTimeout(resolve, firstValueTimeoutMs);
    });
    await Promise.race([known, limit]);
    clearTimeout(timer);
  }

  /** Re-reads the key; delivers it when it is newer than what the watch delivered. */
  async resync(): Promise<void> {
    if (!this.kv || this.stopped) return;
    try {
      const entry = await this.kv.get(this.key);
      this.onContact();
      this.deliverEntry(entry);
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
        if (!this.known) {
          // The watch says nothing about a key that does not exist: a get tells "no assignments" from "not read yet".
          const entry = await this.kv.get(this.key);
          this.onContact();
          if (entry) this.deliverEntry(entry);
          else this.deliver(undefined, 0);
        }
        const iterator = await this.kv.watch({ key: this.key });
        this.iterator = iterator;
        backoff = 100;
        if (this.stopped) iterator.stop();
        for await (const entry of iterator) {
          this.onContact();
          this.deliverEntry(entry);
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

  /**
   * Only ever forwards: a re-opened watch replays the current value, and a resync may have delivered a revision the
   * watch reaches later. Going back to an older desired state could re-run a task the scheduler already removed.
   */
  private deliverEntry(entry: { revision: number; operation: string; value: Uint8Array } | null): void {
    if (!entry || entry.revision <= this.revision) return;
    this.deliver(entry.operation === "PUT" ? entry.value : undefined, entry.revision);
  }

  private deliver(bytes: Uint8Array | undefined, revision: number): void {
    this.revision = revision;
    this.known = true;
    this.firstValue?.();
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
