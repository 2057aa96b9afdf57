import { connectBus, decode, encode, ensureStore, jsonCodec, subjects, TypedKv } from "@capa/bus";
import { ConflictError, defaultJobSpec, type Job } from "@capa/domain";
import { type NatsServerHandle, startNatsServer } from "@capa/testkit";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

describe("bus store on a real nats-server", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connectBus({ servers: server.url, name: "bus-test" });
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  it("creates buckets idempotently and enforces CAS on update", async () => {
    const store = await ensureStore(nc);
    await ensureStore(nc); // second call must not fail
    const kv = new TypedKv(store.jobs, jsonCodec<{ n: number }>());
    const rev = await kv.create("k1", { n: 1 });
    await expect(kv.create("k1", { n: 2 })).rejects.toBeInstanceOf(ConflictError);
    const rev2 = await kv.update("k1", { n: 2 }, rev);
    await expect(kv.update("k1", { n: 3 }, rev)).rejects.toBeInstanceOf(ConflictError);
    expect((await kv.get("k1"))?.value).toEqual({ n: 2 });
    expect((await kv.get("k1"))?.revision).toBe(rev2);
  });

  it("mutate retries until its change lands, so concurrent increments are never lost", async () => {
    const store = await ensureStore(nc);
    const kv = new TypedKv(store.jobs, jsonCodec<{ n: number }>());
    await Promise.all(Array.from({ length: 10 }, () => kv.mutate("counter", (c) => ({ n: (c?.n ?? 0) + 1 }))));
    expect((await kv.get("counter"))?.value.n).toBe(10);
  });

  it("round-trips a job through the protobuf codec byte for byte", () => {
    const job: Job = {
      id: "jabc",
      tenant: "acme",
      requestId: "r1",
      spec: defaultJobSpec({ gpuModels: ["H100-80GB"], demandByRegion: { "eu-west": 3 } }),
      state: "running",
      reason: "",
      tasks: [],
      createdAtMs: 1,
      updatedAtMs: 2,
      finishedAtMs: 0,
      cancelRequested: false,
      spent: 5,
      reserved: 7,
    };
    const bytes = encode.job(job);
    expect(decode.job(bytes)).toEqual(job);
    expect(encode.job(decode.job(bytes))).toEqual(bytes);
  });

  it("rejects subject tokens that would break the subject tree", () => {
    expect(() => subjects.advert("eu.west", "a1")).toThrow(/region/);
    expect(() => subjects.taskStatus("x>")).toThrow(/task id/);
    expect(subjects.taskLogs("j1-0")).toBe("capa.v1.task.j1-0.logs");
  });
});
