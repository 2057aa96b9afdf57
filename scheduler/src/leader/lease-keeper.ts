/**
 * Keeps trying to take or renew the leader lease (`capa_leader/scheduler`) every third of its length, and
 * tells the scheduler when it becomes leader and when it must stop acting as one.
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

export class LeaseKeeper {
  private held: LeaseRecord | undefined;
  private revision = 0;
  private timer: NodeJS.Timeout | undefined;
  private leader = false;
  private stopped = false;
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly kv: TypedKv<LeaseRecord>,
    private readonly me: string,
    private readonly ttlMs: number,
    private readonly now: () => number,
    private readonly hooks: LeaseHooks,
    private readonly logger: Logger,
  ) {}

  get isLeader(): boolean {
    return this.leader && mayAct(this.held, this.me, this.now(), this.marginMs);
  }

  get term(): number {
    return this.held?.term ?? 0;
  }

  private get marginMs(): number {
    return Math.floor(this.ttlMs / 5);
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
    await this.chain;
    if (this.leader) await this.setLeader(false);
    if (this.held && this.held.holder === this.me) {
      try {
        await this.kv.update(LEASE_KEY, released(this.held, this.now()), this.revision);
      } catch (err) {
        this.logger.debug({ err }, "lease release lost a race; it will expire");
      }
    }
  }

  /** One attempt; serialised so ticks never overlap. */
  step(): Promise<void> {
    this.chain = this.chain.then(() => this.attempt()).catch((err) => this.logger.warn({ err }, "lease step failed"));
    return this.chain;
  }

  private async attempt(): Promise<void> {
    if (this.stopped) return;
    try {
      const current = await this.kv.get(LEASE_KEY);
      const decision = decideLease(current?.value, this.me, this.now(), this.ttlMs);
      if (decision.kind === "follow") {
        this.held = undefined;
        if (this.leader) await this.setLeader(false);
        return;
      }
      this.revision = await this.kv.write(LEASE_KEY, decision.record, current?.revision ?? 0);
      this.held = decision.record;
      if (!this.leader && !this.stopped) {
        this.logger.info({ term: decision.record.term, kind: decision.kind }, "leader lease acquired");
        await this.setLeader(true);
      }
    } catch (err) {
      if (!(err instanceof ConflictError)) this.logger.warn({ err }, "lease renewal failed");
      // Lost a race or cannot reach the store: keep acting only while the lease we hold is surely ours.
      if (this.leader && !mayAct(this.held, this.me, this.now(), this.marginMs)) await this.setLeader(false);
    }
  }

  private async setLeader(leader: boolean): Promise<void> {
    this.leader = leader;
    if (leader) await this.hooks.elected(this.held!.term);
    else {
      this.logger.info("stepping down as leader");
      await this.hooks.demoted();
    }
  }
}
