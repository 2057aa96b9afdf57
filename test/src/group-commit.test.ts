/**
 * GroupCommit (@capa/bus) against a real nats-server KV: many concurrent changes of one key cost few writes and
 * none is lost, a refused change fails only its caller, a write of another process is re-decided (no lost
 * update), and a failed write answers every caller of its batch with the error and stores nothing of it.
 */
import { connectBus, GroupCommit, jsonCodec, type NatsConnection, TypedKv } from "@capa/bus";
import { type NatsServerHandle, startNatsServer } from "@capa/testkit";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

interface Doc {
  n: number;
  ids: string[];
}

let nats: NatsServerHandle;
let nc: NatsConnection;
let other: NatsConnection;

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connectBus({ servers: nats.url, name: "group-commit-a" });
  other = await connectBus({ servers: nats.url, name: "group-commit-b" });
});

afterAll(async () => {
  await nc?.close();
  await other?.close();
  await nats?.stop();
});

async function typed(conn: NatsConnection, bucket: string): Promise<TypedKv<Doc>> {
  const kv = await new Kvm(jetstream(conn)).create(bucket, { history: 1 });
  return new TypedKv(kv, jsonCodec<Doc>());
}

const add = (id: string) => (cur: Doc | undefined) => ({ n: (cur?.n ?? 0) + 1, ids: [...(cur?.ids ?? []), id] });

describe("GroupCommit", () => {
  it("merges concurrent changes of one key into few writes and answers each after its write is stored", async () => {
    const kv = await typed(nc, "gc_merge");
    const gc = new GroupCommit(kv);
    const results = await Promise.all(
      Array.from({ length: 300 }, async (_, i) => {
        const entry = await gc.mutate("k", add(`c${i}`));
        // Durable before answered: the store already holds this caller's change.
        const stored = await kv.get("k");
        return { i, seen: stored!.value.ids.includes(`c${i}`), revision: entry!.revision };
      }),
    );
    expect(results.every((r) => r.seen)).toBe(true);
    const final = (await kv.get("k"))!.value;
    expect(final.n).toBe(300);
    expect(new Set(final.ids).size).toBe(300);
    expect(gc.writes).toBeLessThan(300);
    expect(gc.writes).toBeGreaterThan(0);
  });

  it("fails only the change that throws; the rest of its batch is stored", async () => {
    const kv = await typed(nc, "gc_refuse");
    const gc = new GroupCommit(kv);
    const outcomes = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) =>
        gc.mutate("k", (cur) => {
          if (i % 5 === 0) throw new Error(`refused ${i}`);
          return add(`c${i}`)(cur);
        }),
      ),
    );
    const refused = outcomes.flatMap((o, i) => (o.status === "rejected" ? [i] : []));
    expect(refused).toEqual([0, 5, 10, 15]);
    expect((outcomes[0] as PromiseRejectedResult).reason.message).toBe("refused 0");
    const final = (await kv.get("k"))!.value;
    expect(final.n).toBe(16);
    expect(final.ids.some((id) => ["c0", "c5", "c10", "c15"].includes(id))).toBe(false);
  });

  it("re-applies a batch to what another process wrote meanwhile (CAS), losing no update of either", async () => {
    const a = new GroupCommit(await typed(nc, "gc_race"));
    const b = new GroupCommit(await typed(other, "gc_race"));
    await Promise.all([
      ...Array.from({ length: 100 }, (_, i) => a.mutate("k", add(`a${i}`))),
      ...Array.from({ length: 100 }, (_, i) => b.mutate("k", add(`b${i}`))),
    ]);
    const final = (await (await typed(nc, "gc_race")).get("k"))!.value;
    expect(final.n).toBe(200);
    expect(new Set(final.ids).size).toBe(200);
  });

  it("a failed write answers every caller of its batch with the error and stores none of it", async () => {
    const kv = await typed(nc, "gc_fail");
    await kv.create("k", { n: 0, ids: [] });
    let failNext = false;
    const faulty = Object.create(kv) as TypedKv<Doc>;
    faulty.write = async (key, value, revision) => {
      if (failNext) {
        failNext = false;
        throw new Error("store unavailable");
      }
      return kv.write(key, value, revision);
    };
    const gc = new GroupCommit(faulty);
    await gc.mutate("k", add("before"));
    failNext = true;
    const batch = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => gc.mutate("k", add(`lost${i}`))));
    expect(batch.every((o) => o.status === "rejected")).toBe(true);
    expect((await kv.get("k"))!.value.ids).toEqual(["before"]);
    // The next batch starts from the stored value again: nothing of the failed batch, nothing twice.
    await gc.mutate("k", add("after"));
    expect((await kv.get("k"))!.value).toEqual({ n: 2, ids: ["before", "after"] });
  });

  it("decides a no-op again on a fresh read, unless its caller vouched that it holds on any newer value", async () => {
    const kv = await typed(nc, "gc_noop");
    const gc = new GroupCommit(kv);
    await gc.mutate("k", add("mine"));
    let reads = 0;
    const latest = kv.getLatest.bind(kv);
    kv.getLatest = (key) => {
      reads++;
      return latest(key);
    };
    // "n is at least 1": n only grows, so a no-op on the kept value is one on any newer value.
    const atLeastOne = (cur: Doc | undefined) => ((cur?.n ?? 0) >= 1 ? undefined : add("one")(cur));
    await gc.mutate("k", atLeastOne, { noopOnKept: true });
    expect(reads).toBe(0);
    // Another process wrote since the kept value: a no-op without the promise is decided on the stored value.
    const theirs = new TypedKv(await new Kvm(jetstream(other)).open("gc_noop"), jsonCodec<Doc>());
    const stored = await theirs.get("k");
    await theirs.update("k", { n: 5, ids: [...stored!.value.ids, "theirs"] }, stored!.revision);
    const seen = await gc.mutate("k", () => undefined);
    expect(reads).toBe(1);
    expect(seen?.value.ids).toEqual(["mine", "theirs"]);
    // A refusal is always decided again on a fresh read, promise or not.
    await gc.mutate("k", add("ours"));
    const refusal = gc.mutate(
      "k",
      () => {
        throw new Error("over the cap");
      },
      { noopOnKept: true },
    );
    await expect(refusal).rejects.toThrow("over the cap");
    expect(reads).toBe(2);
  });
});
