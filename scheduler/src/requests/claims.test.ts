import { jsonCodec, migrateRequestRegisters, TypedKv } from "@capa/bus";
import type { KV } from "@nats-io/kv";
import { describe, expect, it } from "vitest";
import { memoryKv } from "../market/memory-kv.test-helper.js";
import type { RequestRecord } from "../store/records.js";
import { RequestClaims, type SettledClaim } from "./claims.js";

const codec = jsonCodec<RequestRecord>();
const rec = (jobId: string, createdAtMs = 1_000): RequestRecord => ({
  jobId,
  tenant: "acme",
  requestId: "r1",
  specDigest: "d",
  createdAtMs,
});
const KEY = "acme.h1";

/** `inner` with every call delayed by `before` (a gate, a random delay). */
function delayed(inner: KV, before: () => Promise<unknown>): KV {
  return new Proxy(inner, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== "function") return value;
      return async (...args: unknown[]) => {
        await before();
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

/** A register whose Raft group has no leader: nothing it is asked ever answers (until `revive`). */
function deadKv(): { kv: KV; revive: () => void } {
  let waiting: (() => void)[] = [];
  let alive = false;
  const gate = () => (alive ? Promise.resolve() : new Promise<void>((r) => waiting.push(r)));
  return {
    kv: delayed(memoryKv(), gate),
    revive: () => {
      alive = true;
      for (const r of waiting) r();
      waiting = [];
    },
  };
}

/** A register that fails every call as a leaderless stream does (a store error, not a conflict). */
function failingKv(): KV {
  const fail = async () => {
    throw Object.assign(new Error("no responders"), { code: "503" });
  };
  return { get: fail, create: fail, update: fail, delete: fail, purge: fail } as unknown as KV;
}

/** Each call answered after a random delay, so concurrent claimants reach the registers in different orders. */
function shuffledKv(seed: number): KV {
  let s = seed;
  return delayed(memoryKv(), () => {
    s = (s * 1_103_515_245 + 12_345) % 2 ** 31;
    return new Promise((r) => setTimeout(r, s % 7));
  });
}

const typed = (...kvs: KV[]) => kvs.map((kv) => new TypedKv<RequestRecord>(kv, codec));

describe("RequestClaims", () => {
  it("one register: the first claim wins, a second finds its record", async () => {
    const claims = new RequestClaims(typed(memoryKv()));
    const first = await claims.claim(KEY, rec("ja"));
    expect(first).toMatchObject({ mine: true, known: 1, record: { jobId: "ja" } });
    const second = await claims.claim(KEY, rec("jb"));
    expect(second).toMatchObject({ mine: false, record: { jobId: "ja" } });
    expect(second.at).toEqual(first.at);
  });

  it("one register: a store error is the answer, not retried", async () => {
    const claims = new RequestClaims(typed(failingKv()));
    await expect(claims.claim(KEY, rec("ja"))).rejects.toThrow("no responders");
  });

  it("three registers, one without a leader: the other two decide, without waiting for it", async () => {
    const dead = deadKv();
    const claims = new RequestClaims(typed(dead.kv, memoryKv(), memoryKv()));
    const first = await claims.claim(KEY, rec("ja"));
    expect(first).toMatchObject({ mine: true, known: 2 });
    expect(first.at.map((a) => a.register)).toEqual([1, 2]);
    // A duplicate meanwhile gets the same job.
    expect(await claims.claim(KEY, rec("jb"))).toMatchObject({ mine: false, record: { jobId: "ja" } });
    // The dead register's leader comes back: the writes that were in flight land; the decision stands.
    dead.revive();
    await new Promise((r) => setTimeout(r, 10));
    expect((await claims.registers[0]!.get(KEY))?.value.jobId).toBe("ja");
    expect(await claims.claim(KEY, rec("jc"))).toMatchObject({ mine: false, record: { jobId: "ja" } });
  });

  it("three registers, one failing: decided by the other two, and the failure is reported once all have ended", async () => {
    const settled: SettledClaim[] = [];
    const claims = new RequestClaims(typed(memoryKv(), failingKv(), memoryKv()), {
      retryMs: 5,
      onSettled: (s) => settled.push(s),
    });
    expect(await claims.claim(KEY, rec("ja"))).toMatchObject({ mine: true, known: 2 });
    await new Promise((r) => setTimeout(r, 20));
    expect(settled).toEqual([{ claim: expect.objectContaining({ mine: true }), failed: 1 }]);
    // All answering: nothing failed.
    const healthy: SettledClaim[] = [];
    const all = new RequestClaims(typed(memoryKv(), memoryKv(), memoryKv()), { onSettled: (s) => healthy.push(s) });
    await all.claim(KEY, rec("ja"));
    await new Promise((r) => setTimeout(r, 5));
    expect(healthy.map((s) => s.failed)).toEqual([0]);
  });

  it("three registers, two failing: the store error once the deadline passed", async () => {
    const settled: SettledClaim[] = [];
    const claims = new RequestClaims(typed(memoryKv(), failingKv(), failingKv()), {
      retryMs: 5,
      deadlineMs: 50,
      onSettled: (s) => settled.push(s),
    });
    await expect(claims.claim(KEY, rec("ja"))).rejects.toThrow("no responders");
    expect(settled).toEqual([{ claim: undefined, failed: 2 }]);
  });

  it("a split with a register not known waits for that register", async () => {
    const dead = deadKv();
    const [r0, r1, r2] = typed(dead.kv, memoryKv(), memoryKv());
    await r1!.create(KEY, rec("jb"));
    await r2!.create(KEY, rec("jc"));
    const claims = new RequestClaims([r0!, r1!, r2!]);
    let decided: unknown;
    const pending = claims.claim(KEY, rec("ja")).then((c) => {
      decided = c;
      return c;
    });
    await new Promise((r) => setTimeout(r, 30));
    expect(decided).toBeUndefined();
    dead.revive();
    // Register 0 takes this claimant's record: one each, the smallest job id decides.
    expect(await pending).toMatchObject({ mine: true, known: 3, record: { jobId: "ja" } });
    expect(await claims.claim(KEY, rec("j0"))).toMatchObject({ mine: false, record: { jobId: "ja" } });
  });

  it("concurrent claimants reaching the registers in different orders all get one job, exactly one of them its own", async () => {
    for (let round = 0; round < 20; round++) {
      const claims = new RequestClaims(typed(shuffledKv(round), shuffledKv(round + 101), shuffledKv(round + 202)));
      const results = await Promise.all(
        Array.from({ length: 12 }, (_, i) => claims.claim(KEY, rec(`j${String(i).padStart(2, "0")}`))),
      );
      expect(new Set(results.map((r) => r.record.jobId)).size).toBe(1);
      expect(results.filter((r) => r.mine)).toHaveLength(1);
    }
  });

  it("forget frees the request id; a later claim wins afresh", async () => {
    const claims = new RequestClaims(typed(memoryKv(), memoryKv(), memoryKv()));
    const first = await claims.claim(KEY, rec("ja"));
    await claims.forget(KEY, first);
    expect(await claims.claim(KEY, rec("jb"))).toMatchObject({ mine: true, record: { jobId: "jb" } });
  });

  it("forget leaves a register that changed since", async () => {
    const [r0] = typed(memoryKv());
    const claims = new RequestClaims([r0!]);
    const first = await claims.claim(KEY, rec("ja"));
    await r0!.kv.delete(KEY);
    await r0!.create(KEY, rec("jb"));
    await claims.forget(KEY, first);
    expect((await r0!.get(KEY))?.value.jobId).toBe("jb");
  });

  it("purge removes the key from every register while the request's record names the job, losers' records too", async () => {
    const regs = typed(memoryKv(), memoryKv(), memoryKv());
    await regs[0]!.create(KEY, rec("ja"));
    await regs[1]!.create(KEY, rec("ja"));
    await regs[2]!.create(KEY, rec("jb")); // a concurrent duplicate's record, which lost
    const claims = new RequestClaims(regs);
    await claims.purge(KEY, "jb"); // not the request's job: nothing removed
    expect(await Promise.all(regs.map(async (r) => (await r.get(KEY))?.value.jobId))).toEqual(["ja", "ja", "jb"]);
    await claims.purge(KEY, "ja");
    expect(await Promise.all(regs.map(async (r) => (await r.get(KEY))?.value.jobId))).toEqual([
      undefined,
      undefined,
      undefined,
    ]);
    // The request id is free again, for any spec.
    expect(await claims.claim(KEY, { ...rec("jc"), specDigest: "other" })).toMatchObject({ mine: true });
  });

  it("a store from before the quorum: its records are copied into the new registers once, and keep their jobs", async () => {
    const [r0, r1, r2] = [memoryKv(), memoryKv(), memoryKv()];
    const regs = typed(r0, r1, r2);
    await regs[0]!.create(KEY, rec("jold"));
    await regs[0]!.create("acme.h2", rec("jother"));
    expect(await migrateRequestRegisters(r0, [r1, r2])).toBe(2);
    expect(await migrateRequestRegisters(r0, [r1, r2])).toBe(0); // once: the marker says it is done
    // Even with capa_requests itself without a leader, the copies decide.
    const claims = new RequestClaims([new TypedKv<RequestRecord>(deadKv().kv, codec), regs[1]!, regs[2]!]);
    expect(await claims.claim(KEY, rec("jnew"))).toMatchObject({ mine: false, record: { jobId: "jold" } });
    expect(await claims.claim("acme.h2", rec("jnew"))).toMatchObject({ mine: false, record: { jobId: "jother" } });
  });
});
