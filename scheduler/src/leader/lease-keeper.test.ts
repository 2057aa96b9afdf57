import type { TypedKv } from "@capa/bus";
import { ConflictError } from "@capa/domain";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { LeaseRecord } from "../store/records.js";
import { LeaseKeeper } from "./lease-keeper.js";

const TTL = 1_000; // margin 200 ms, KV call timeout 100 ms, ticks every 333 ms
const T0 = 1_000_000;

/** One-key lease store; `hang` makes every call pend forever (a store that stopped answering). */
class FakeLeaseKv {
  value: LeaseRecord | undefined;
  revision = 0;
  hang = false;
  /** Every call answers this much later (a loaded store or event loop). */
  delayMs = 0;
  /** The next this-many calls fail (a store error, not a conflict). */
  failures = 0;
  calls: number[] = [];
  private forever = new Promise<never>(() => undefined);
  private async slow(): Promise<void> {
    this.calls.push(Date.now() - T0);
    if (this.failures > 0) {
      this.failures--;
      throw new Error("store unavailable");
    }
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
  }
  async get(): Promise<{ key: string; value: LeaseRecord; revision: number } | undefined> {
    if (this.hang) return this.forever;
    await this.slow();
    return this.value && { key: "scheduler", value: this.value, revision: this.revision };
  }
  async write(_key: string, value: LeaseRecord, revision: number): Promise<number> {
    if (this.hang) return this.forever;
    await this.slow();
    if (revision !== this.revision) throw new ConflictError("changed");
    this.value = value;
    return ++this.revision;
  }
  update(key: string, value: LeaseRecord, revision: number): Promise<number> {
    return this.write(key, value, revision);
  }
}

function keeper(kv: FakeLeaseKv) {
  const log: string[] = [];
  const k = new LeaseKeeper(
    kv as unknown as TypedKv<LeaseRecord>,
    "s1",
    TTL,
    () => Date.now(),
    {
      elected: async (term) => {
        log.push(`elected ${term} at ${Date.now() - T0}`);
      },
      demoted: async () => {
        log.push(`demoted at ${Date.now() - T0}`);
      },
    },
    pino({ level: "silent" }),
  );
  return { k, log };
}

describe("lease keeper (fake timers and clock)", () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(T0);
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("a leader whose renewals hang demotes at expiry - margin, before the stored expiry", async () => {
    const kv = new FakeLeaseKv();
    const { k, log } = keeper(kv);
    await k.start();
    expect(log).toEqual(["elected 1 at 0"]);
    await vi.advanceTimersByTimeAsync(340); // renewed at 333: stored expiry T0 + 1333
    expect(kv.value?.expiresAtMs).toBe(T0 + 1_333);
    kv.hang = true; // every later get hangs and never answers
    await vi.advanceTimersByTimeAsync(1_132 - 340); // just before 1333 - 200
    expect(log).toEqual(["elected 1 at 0"]);
    await vi.advanceTimersByTimeAsync(1);
    expect(log).toEqual(["elected 1 at 0", "demoted at 1133"]);
    expect(Date.now()).toBeLessThan(kv.value!.expiresAtMs);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(log).toHaveLength(2);
    kv.hang = false;
    await k.stop();
  });

  it("hung calls are bounded: once the store answers again the keeper is elected again", async () => {
    const kv = new FakeLeaseKv();
    const { k, log } = keeper(kv);
    await k.start();
    kv.hang = true;
    await vi.advanceTimersByTimeAsync(2_000);
    expect(log).toEqual(["elected 1 at 0", "demoted at 800"]);
    kv.hang = false;
    await vi.advanceTimersByTimeAsync(400);
    // The lease expired meanwhile, so it is a takeover: a new term.
    expect(log).toEqual(["elected 1 at 0", "demoted at 800", expect.stringMatching(/^elected 2 at /)]);
    await k.stop();
    expect(log.at(-1)).toMatch(/^demoted at /);
    expect(kv.value!.expiresAtMs).toBeLessThanOrEqual(Date.now()); // released
  });

  it("a leader that keeps renewing is never demoted by an older deadline", async () => {
    const kv = new FakeLeaseKv();
    const { k, log } = keeper(kv);
    await k.start();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(log).toEqual(["elected 1 at 0"]);
    await k.stop();
    expect(log).toEqual(["elected 1 at 0", "demoted at 10000"]);
  });

  it("a follower is never elected while another holder's lease is live", async () => {
    const kv = new FakeLeaseKv();
    kv.value = { holder: "s2", term: 4, expiresAtMs: T0 + 5_000, acquiredAtMs: T0 };
    kv.revision = 7;
    const { k, log } = keeper(kv);
    await k.start();
    await vi.advanceTimersByTimeAsync(4_990);
    expect(log).toEqual([]);
    await vi.advanceTimersByTimeAsync(400);
    expect(log).toEqual([expect.stringMatching(/^elected 5 at /)]);
    await k.stop();
  });

  it("a follower takes over just after the lease it saw expires, not at its next tick", async () => {
    const kv = new FakeLeaseKv();
    // Expires 100 ms after a tick (ticks at 0, 333, 666, ...): the next tick would come 233 ms late.
    kv.value = { holder: "s2", term: 4, expiresAtMs: T0 + 1_099, acquiredAtMs: T0 };
    kv.revision = 7;
    const { k, log } = keeper(kv);
    await k.start();
    await vi.advanceTimersByTimeAsync(1_098);
    expect(log).toEqual([]);
    await vi.advanceTimersByTimeAsync(20);
    expect(log).toEqual(["elected 5 at 1109"]);
    expect(kv.value).toMatchObject({ holder: "s1", term: 5 });
    await k.stop();
  });

  it("a slow store (answers slower than half the margin, faster than the deadline) never demotes the leader", async () => {
    const kv = new FakeLeaseKv();
    const { k, log } = keeper(kv);
    await k.start();
    // 150 ms per call, 300 ms per renewal: over the 100 ms half-margin that once bounded every call (each
    // renewal then timed out and the leader stepped down at 800), well inside the 800 ms to the deadline.
    kv.delayMs = 150;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(log).toEqual(["elected 1 at 0"]);
    expect(kv.value!.expiresAtMs).toBeGreaterThan(Date.now());
    const stopping = k.stop(); // waits for the renewal in flight
    await vi.advanceTimersByTimeAsync(1_000);
    await stopping;
  });

  it("a failed renewal is retried after a twentieth of the TTL, not at the next third", async () => {
    const kv = new FakeLeaseKv();
    const { k, log } = keeper(kv);
    await k.start();
    kv.calls = [];
    kv.failures = 1; // the renewal at 333 fails at once
    await vi.advanceTimersByTimeAsync(400);
    expect(kv.calls.slice(0, 2)).toEqual([333, 383]);
    expect(log).toEqual(["elected 1 at 0"]);
    await k.stop();
  });
});
