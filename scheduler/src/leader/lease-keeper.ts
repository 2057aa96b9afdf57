/**
 * Keeps trying to take or renew the leader lease (`capa_leader/scheduler`) every third of its length, and
 * tells the scheduler when it becomes leader and when it must stop acting as one.
 *
 * A leader never acts past `expiresAtMs - margin` (margin = ttl/5) of the lease it last wrote: every successful
 * write arms a deadline timer for that instant, which demotes unless a newer write has landed by then. The timer
 * does not depend on the store answering, so it alone is what keeps a leader from acting on a lease it may have
 * lost. The KV calls of a renewal are bounded only so that a hung store does not block the next attempts: a
 * leader waits for an answer up to its deadline (never less than half the margin), and a failed attempt is
 * retried after a twentieth of the TTL instead of the next third. A loaded store or event loop (answers slower
 * than the margin, seen under benchmark load) therefore delays renewals without demoting a leader that still
 * renews in time, where a fixed bound below the margin made it flap; a write that lands late carries the
 * expiry computed before it was sent, so it never extends the lease beyond what the other replicas can see.
 * Ticks that come while an attempt is in flight are skipped (they would only queue stale attempts behind it);
 * a follower's attempt at the expiry it saw is never skipped (it queues behind the one in flight).
 *
 * A follower also tries again the moment the lease it saw expires (not only at its next tick), so a leader that
 * died is replaced at most one TTL after its last renewal: failover time is bounded by the TTL, not TTL + tick.
 */

import type { TypedKv } from "@capa/bus";
import { ConflictError } from "@capa/domain";
import type { Logger } from "pino";
import { LEASE_KEY } from "../store/buckets.js";
import type { LeaseRecord } from "../store/records.js";
import { decideLease, mayAct, released } from "./lease.js";

export interface LeaseHooks {
  elected(term: number): Promise<void>;
  demoted(): Promise<void>;
}

export class LeaseTimeoutError extends Error {
  override readonly name = "LeaseTimeoutError";
}

export class LeaseKeeper {
  private held: LeaseRecord | undefined;
  private revision = 0;
  private timer: NodeJS.Timeout | undefined;
  /** A follower's extra attempt at the expiry of the lease it saw. */
  private expiryTimer: NodeJS.Timeout | undefined;
  /** Demotes at `held.expiresAtMs - margin` unless a newer write re-armed it. */
  private deadline: NodeJS.Timeout | undefined;
  /** Counts successful lease writes; a deadline armed for an older write does nothing. */
  private writes = 0;
  private leader = false;
  private stopped = false;
  private chain: Promise<void> = Promise.resolve();
  /** An attempt is running (or queued): a tick meanwhile is skipped. */
  private busy = false;
  private retry: NodeJS.Timeout | undefined;
  /** The lease as last read or written: who leads, until when, and where (for followers forwarding writes). */
  private observed: LeaseRecord | undefined;

  constructor(
    private readonly kv: TypedKv<LeaseRecord>,
    private readonly me: string,
    private readonly ttlMs: number,
    private readonly now: () => number,
    private readonly hooks: LeaseHooks,
    private readonly logger: Logger,
    /** Written into the lease so followers can forward writes to this replica when it leads. */
    private readonly address?: string,
  ) {}

  /** The live lease holder as this replica last saw it (refreshed every third of the TTL), if any. */
  currentLeader(): { holder: string; address?: string; term: number } | undefined {
    const seen = this.observed;
    if (!seen || seen.expiresAtMs <= this.now()) return undefined;
    return { holder: seen.holder, term: seen.term, ...(seen.address ? { address: seen.address } : {}) };
  }

  private get marginMs(): number {
    return Math.floor(this.ttlMs / 5);
  }

  /**
   * Longest wait for one KV call of an attempt: a leader waits until its deadline (the deadline timer demotes it
   * meanwhile if need be); anyone else, and a leader past its deadline, half the margin.
   */
  private get callTimeoutMs(): number {
    const floor = Math.max(1, Math.floor(this.marginMs / 2));
    if (this.leader && this.held) return Math.max(floor, this.held.expiresAtMs - this.marginMs - this.now());
    return floor;
  }

  private get retryMs(): number {
    return Math.max(10, Math.floor(this.ttlMs / 20));
  }

  start(): Promise<void> {
    const first = this.step();
    this.timer = setInterval(() => void this.step(), Math.max(20, Math.floor(this.ttlMs / 3)));
    return first;
  }

  /** Stops renewing; a leader releases the lease so a successor takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.expiryTimer);
    clearTimeout(this.retry);
    await this.chain;
    clearTimeout(this.deadline);
    if (this.leader) await this.setLeader(false);
    if (this.held && this.held.holder === this.me) {
      try {
        await this.bounded(this.kv.update(LEASE_KEY, released(this.held, this.now()), this.revision));
      } catch (err) {
        this.logger.debug({ err }, "lease release lost a race; it will expire");
      }
    }
  }

  /** One attempt; serialised, and skipped while one is in flight unless `queue` (it then runs after it). */
  step(queue = false): Promise<void> {
    if (this.busy && !queue) return this.chain;
    this.busy = true;
    const next = this.chain
      .then(() => this.attempt())
      .catch((err) => this.logger.warn({ err }, "lease step failed"))
      .finally(() => {
        if (this.chain === next) this.busy = false;
      });
    this.chain = next;
    return next;
  }

  private async attempt(): Promise<void> {
    if (this.stopped) return;
    clearTimeout(this.retry);
    this.retry = undefined;
    try {
      const current = await this.bounded(this.kv.get(LEASE_KEY));
      const decision = decideLease(current?.value, this.me, this.now(), this.ttlMs);
      this.observed = current?.value;
      if (decision.kind === "follow") {
        this.attemptAtExpiry(decision.expiresAtMs);
        this.held = undefined;
        if (this.leader) await this.setLeader(false);
        return;
      }
      const record = this.address ? { ...decision.record, address: this.address } : decision.record;
      const revision = await this.bounded(this.kv.write(LEASE_KEY, record, current?.revision ?? 0));
      this.revision = revision;
      this.held = record;
      this.observed = record;
      if (this.stopped) return; // stop() releases it
      this.armDeadline();
      if (!this.leader && mayAct(this.held, this.me, this.now(), this.marginMs)) {
        this.logger.info({ term: decision.record.term, kind: decision.kind }, "leader lease acquired");
        await this.setLeader(true);
      }
    } catch (err) {
      if (!(err instanceof ConflictError)) this.logger.warn({ err }, "lease renewal failed");
      // Lost a race or cannot reach the store: keep acting only while the lease we hold is surely ours (the
      // deadline timer enforces the same while this attempt hangs).
      if (this.leader && !mayAct(this.held, this.me, this.now(), this.marginMs)) await this.setLeader(false);
      // A leader whose renewal failed tries again soon, not a third of the TTL later: more chances before its
      // deadline on a store that is slow rather than gone.
      if (this.leader && !this.stopped) {
        this.retry = setTimeout(() => void this.step(), this.retryMs);
        this.retry.unref?.();
      }
    }
  }

  private attemptAtExpiry(expiresAtMs: number): void {
    clearTimeout(this.expiryTimer);
    // Just past the expiry: decideLease treats `expiresAtMs <= now` as expired.
    this.expiryTimer = setTimeout(() => void this.step(true), Math.max(0, expiresAtMs - this.now()) + 10);
    this.expiryTimer.unref?.();
  }

  /** After a successful write: demote at `expiresAtMs - margin` unless another write lands before. */
  private armDeadline(): void {
    clearTimeout(this.deadline);
    const write = ++this.writes;
    const held = this.held!;
    const delay = Math.max(0, held.expiresAtMs - this.marginMs - this.now());
    this.deadline = setTimeout(() => {
      if (write !== this.writes || !this.leader) return;
      this.logger.warn({ term: held.term, expiresAtMs: held.expiresAtMs }, "lease not renewed in time");
      this.setLeader(false).catch((err) => this.logger.warn({ err }, "demotion failed"));
    }, delay);
    this.deadline.unref?.();
  }

  private bounded<T>(call: Promise<T>): Promise<T> {
    let timeout: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timeout = setTimeout(
        () => reject(new LeaseTimeoutError(`lease store call took over ${this.callTimeoutMs} ms`)),
        this.callTimeoutMs,
      );
    });
    return Promise.race([call, expired]).finally(() => clearTimeout(timeout));
  }

  private async setLeader(leader: boolean): Promise<void> {
    if (this.leader === leader) return;
    this.leader = leader;
    if (leader) await this.hooks.elected(this.held!.term);
    else {
      this.logger.info("stepping down as leader");
      await this.hooks.demoted();
    }
  }
}
