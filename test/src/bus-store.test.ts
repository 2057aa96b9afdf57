import {
  connectBus,
  decode,
  encode,
  ensureStore,
  jsonCodec,
  parseTaskSubject,
  REQUEST_REGISTERS,
  REQUEST_REGISTERS_MIGRATED,
  STREAMS,
  subjects,
  TypedKv,
} from "@capa/bus";
import { ConflictError, defaultJobSpec, type Job, type TaskStatusReport } from "@capa/domain";
import { type NatsServerHandle, startNatsServer } from "@capa/testkit";
import { Kvm } from "@nats-io/kv";
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

  it("getLatest reads through the stream leader, get through any replica (direct get)", async () => {
    const store = await ensureStore(nc);
    const kv = new TypedKv(store.jobs, jsonCodec<{ n: number }>());
    const rev = await kv.create("leader-read", { n: 1 });
    const rev2 = await kv.update("leader-read", { n: 2 }, rev);
    const seen: string[] = [];
    const sub = nc.subscribe("$JS.API.>", {
      callback: (_err, m) => {
        if (m.subject.includes("leader-read") || m.subject.includes("MSG.GET") || m.subject.includes("DIRECT.GET"))
          seen.push(
            m.subject.startsWith("$JS.API.DIRECT.GET.") ? "direct" : m.subject.split(".").slice(2, 5).join("."),
          );
      },
    });
    await nc.flush();
    expect(await kv.get("leader-read")).toMatchObject({ value: { n: 2 }, revision: rev2 });
    expect(await kv.getLatest("leader-read")).toMatchObject({ value: { n: 2 }, revision: rev2 });
    await nc.flush();
    sub.unsubscribe();
    expect(seen).toEqual(["direct", "STREAM.MSG.GET"]);
    expect(await kv.getLatest("absent-key")).toBeUndefined();
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
    expect(() => subjects.taskStatus("x>", "a1")).toThrow(/task id/);
    expect(() => subjects.taskStatus("j1-0", "*")).toThrow(/agent id/);
    expect(subjects.taskLogs("j1-0", "a1")).toBe("capa.v1.task.j1-0.logs.a1");
    expect(parseTaskSubject("capa.v1.task.j1-0.usage.a1")).toEqual({ taskId: "j1-0", kind: "usage", agentId: "a1" });
    expect(parseTaskSubject("capa.v1.task.j1-0.usage")).toBeUndefined();
  });
});

const status = (taskId: string, state: TaskStatusReport["state"]): TaskStatusReport => ({
  taskId,
  jobId: `job-${taskId}`,
  agentId: "a1",
  epoch: 1,
  state,
  exitCode: 0,
  signal: "",
  startedAtMs: 1,
  finishedAtMs: 0,
  message: "",
  sentAtMs: 1,
  bootId: "b1",
});
const logChunk = (taskId: string, seq: number, bytes: number) =>
  encode.log({ taskId, jobId: `job-${taskId}`, stream: "stdout", data: Buffer.alloc(bytes, 120), seq, atMs: seq });

describe("task streams: status and usage in CAPA_TASKS, logs in CAPA_LOGS", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connectBus({ servers: server.url, name: "bus-streams-test" });
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  it("migrates a store from before the split and before task subjects named the agent", async () => {
    const { jetstreamManager, jetstream } = await import("@nats-io/jetstream");
    const jsm = await jetstreamManager(nc);
    const js = jetstream(nc);
    // The layout before the split: one stream for every task subject, 5-token subjects without the agent.
    await jsm.streams.add({ name: STREAMS.tasks, subjects: [subjects.allTasks], storage: "file" });
    await js.publish("capa.v1.task.old.status", encode.status(status("old", "running")));
    await js.publish("capa.v1.task.old.logs", logChunk("old", 1, 10));

    const store = await ensureStore(nc);
    await ensureStore(nc); // idempotent once migrated

    const tasks = await store.jsm.streams.info(STREAMS.tasks);
    expect(tasks.config.subjects).toEqual(["capa.v1.task.*.status.*", "capa.v1.task.*.usage.*"]);
    const logs = await store.jsm.streams.info(STREAMS.logs);
    expect(logs.config.subjects).toEqual(["capa.v1.task.*.logs.*"]);
    expect(logs.config).toMatchObject({ max_bytes: 4 * 1024 ** 3, max_msgs_per_subject: 65_536, discard: "old" });
    // The old events stay in CAPA_TASKS until they age out; new logs land in CAPA_LOGS, statuses in CAPA_TASKS.
    expect(tasks.state.messages).toBe(2);
    expect((await store.js.publish(subjects.taskLogs("new", "a1"), logChunk("new", 1, 10))).stream).toBe(STREAMS.logs);
    const ack = await store.js.publish(subjects.taskStatus("new", "a1"), encode.status(status("new", "running")));
    expect(ack.stream).toBe(STREAMS.tasks);
    expect((await store.js.publish(subjects.taskUsage("new", "a1"), new Uint8Array([1]))).stream).toBe(STREAMS.tasks);

    // A consumer on the new status subjects reads the new status only.
    const consumer = await store.js.consumers.get(STREAMS.tasks, { filter_subjects: subjects.allTaskStatus });
    const first = await consumer.next({ expires: 5_000 });
    expect(decode.status(first!.data).taskId).toBe("new");
  });

  it("a log flood beyond CAPA_LOGS's cap evicts only old logs, never a status or usage report", async () => {
    const small = 64 * 1024;
    const store = await ensureStore(nc, { logsMaxBytes: small, taskEventsMaxBytes: small, logsMaxChunksPerTask: 20 });
    const before = await store.jsm.streams.info(STREAMS.tasks);
    await store.js.publish(subjects.taskStatus("quiet", "a1"), encode.status(status("quiet", "running")));
    await store.js.publish(subjects.taskUsage("quiet", "a1"), new Uint8Array([7]));
    await store.js.publish(subjects.taskLogs("quiet", "a1"), logChunk("quiet", 1, 100));

    // Eight noisy tasks, 4 KiB chunks: 1 MiB of logs, sixteen times either stream's cap.
    for (let seq = 1; seq <= 32; seq++) {
      await Promise.all(
        Array.from({ length: 8 }, (_, t) =>
          store.js.publish(subjects.taskLogs(`noisy-${t}`, "a1"), logChunk(`noisy-${t}`, seq, 4096)),
        ),
      );
    }

    const tasks = await store.jsm.streams.info(STREAMS.tasks);
    expect(tasks.state.messages).toBe(before.state.messages + 2);
    const kept = await store.jsm.streams.getMessage(STREAMS.tasks, {
      last_by_subj: subjects.taskStatus("quiet", "a1"),
    });
    expect(decode.status(kept!.data)).toMatchObject({ taskId: "quiet", state: "running" });
    expect(
      await store.jsm.streams.getMessage(STREAMS.tasks, { last_by_subj: subjects.taskUsage("quiet", "a1") }),
    ).toBeTruthy();

    const logs = await store.jsm.streams.info(STREAMS.logs, { subjects_filter: ">" });
    expect(logs.state.bytes).toBeLessThanOrEqual(small);
    expect(logs.state.first_seq).toBeGreaterThan(1); // the oldest logs went
    const last = await store.jsm.streams.getMessage(STREAMS.logs, { last_by_subj: subjects.taskLogs("noisy-0", "a1") });
    expect(decode.log(last!.data).seq).toBe(32); // the newest stay
  });

  it("one task over its chunk cap loses its own oldest chunks, not another task's logs", async () => {
    const store = await ensureStore(nc, { logsMaxChunksPerTask: 10 });
    for (let seq = 1; seq <= 25; seq++)
      await store.js.publish(subjects.taskLogs("chatty", "a1"), logChunk("chatty", seq, 10));
    for (let seq = 1; seq <= 3; seq++)
      await store.js.publish(subjects.taskLogs("calm", "a1"), logChunk("calm", seq, 10));
    const info = await store.jsm.streams.info(STREAMS.logs, { subjects_filter: "capa.v1.task.*.logs.*" });
    expect(info.state.subjects?.[subjects.taskLogs("chatty", "a1")]).toBe(10);
    expect(info.state.subjects?.[subjects.taskLogs("calm", "a1")]).toBe(3);
    const consumer = await store.js.consumers.get(STREAMS.logs, { filter_subjects: subjects.taskLogs("chatty", "a1") });
    const first = await consumer.next({ expires: 5_000 });
    expect(decode.log(first!.data).seq).toBe(16);
  });
  // Last in this file: it leaves the two extra request registers in the shared server's store.
  it("request registers: capa_requests alone below 3 replicas, all three once they exist, its records copied once", async () => {
    const store = await ensureStore(nc);
    expect(store.requestRegisters).toHaveLength(1);
    expect(store.requestRegisters[0]).toBe(store.requests);
    await store.requests.create("acme.old", new TextEncoder().encode('{"jobId":"jold"}'));
    // Another replica created them (a store of 3 replicas): this one, started with 1, must use them too.
    const kvm = new Kvm(nc);
    await Promise.all(REQUEST_REGISTERS.slice(1).map((name) => kvm.create(name, { history: 1 })));
    const again = await ensureStore(nc);
    expect(again.requestRegisters).toHaveLength(3);
    for (const kv of again.requestRegisters.slice(1))
      expect(new TextDecoder().decode((await kv.get("acme.old"))?.value)).toBe('{"jobId":"jold"}');
    expect(await again.requestRegisters[1]!.get(REQUEST_REGISTERS_MIGRATED)).not.toBeNull();
    // Once: a record written after the copy is not copied by the next start.
    await store.requests.create("acme.late", new TextEncoder().encode('{"jobId":"jlate"}'));
    const third = await ensureStore(nc);
    expect(await third.requestRegisters[1]!.get("acme.late")).toBeNull();
  });
});
