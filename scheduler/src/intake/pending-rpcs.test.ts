/**
 * Jobs acknowledged from the intake and not written yet, in the tenant RPCs' domain calls (ListJobs' listing,
 * CancelJob), with in-memory stores and two in-memory intake streams under the real writer, index, followers and
 * materialiser (the real-NATS version is test/src/submit-intake.test.ts). The budgets store is held stuck, as a
 * budgets stream without a leader would be, so the jobs stay in the intake until the test lets them through.
 */
import { jsonCodec, TypedKv } from "@capa/bus";
import { defaultJobSpec, type Job, type JobSpec, newTask } from "@capa/domain";
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { compareKeys, pageByKey } from "../grpc/paging.js";
import { requestCancel } from "../jobs/cancel.js";
import { testJob } from "../jobs/job.test-helper.js";
import { memoryKv } from "../market/memory-kv.test-helper.js";
import { SchedulerMetrics } from "../metrics.js";
import { JobRepo } from "../store/job-repo.js";
import { decodeIntake, decodePending, encodeCancel, encodePending } from "./envelope.js";
import { IntakeFallback } from "./fallback.js";
import { followIntake } from "./follow.js";
import { memoryJobService } from "./job-service.test-helper.js";
import { Materialiser } from "./materialiser.js";
import { PendingIndex } from "./pending-index.js";
import { IntakeWriter } from "./writer.js";

const spec: JobSpec = {
  ...defaultJobSpec({ gpusPerReplica: 1 }),
  template: { ...defaultJobSpec().template, command: ["true"] },
};
const silent = pino({ level: "silent" });

/** Two JetStream streams in memory: publish with msg-id dedup, info, get by seq or last by subject, delete. */
class MemoryStreams {
  readonly streams = new Map<string, { seq: number; msgs: Map<number, { subject: string; data: Uint8Array }> }>();
  private readonly ids = new Map<string, number>();
  /** Streams that answer nothing (no leader). */
  readonly down = new Set<string>();

  constructor(names: readonly string[]) {
    for (const n of names) this.streams.set(n, { seq: 0, msgs: new Map() });
  }

  private stream(name: string) {
    if (this.down.has(name)) throw new Error("TIMEOUT");
    return this.streams.get(name)!;
  }

  /** Raw messages of a stream, oldest first (decoded). */
  entries(name: string) {
    return [...this.streams.get(name)!.msgs.entries()].map(([seq, m]) => ({ seq, entry: decodeIntake(m.data) }));
  }

  put(name: string, subject: string, data: Uint8Array) {
    const s = this.stream(name);
    s.msgs.set(++s.seq, { subject, data });
    return s.seq;
  }

  js(): JetStreamClient {
    return {
      publish: async (subject: string, data: Uint8Array, o: { msgID: string; expect: { streamName: string } }) => {
        const name = o.expect.streamName;
        this.stream(name);
        const seen = this.ids.get(`${name}/${o.msgID}`);
        if (seen !== undefined) return { stream: name, seq: seen, duplicate: true };
        const seq = this.put(name, subject, data);
        this.ids.set(`${name}/${o.msgID}`, seq);
        return { stream: name, seq, duplicate: false };
      },
    } as unknown as JetStreamClient;
  }

  jsm(): JetStreamManager {
    const notFound = () => new Error("no message found");
    return {
      streams: {
        info: async (name: string) => {
          const s = this.stream(name);
          const seqs = [...s.msgs.keys()];
          return { state: { messages: seqs.length, first_seq: seqs[0] ?? s.seq + 1, last_seq: s.seq } };
        },
        getMessage: async (name: string, q: { seq?: number; last_by_subj?: string }) => {
          const s = this.stream(name);
          if (q.seq !== undefined) {
            const m = s.msgs.get(q.seq);
            if (!m) throw notFound();
            return { seq: q.seq, data: m.data };
          }
          const last = [...s.msgs.entries()].filter(([, m]) => m.subject === q.last_by_subj).at(-1);
          if (!last) throw notFound();
          return { seq: last[0], data: last[1].data };
        },
        deleteMessage: async (name: string, seq: number) => {
          if (!this.stream(name).msgs.delete(seq)) throw notFound();
          return true;
        },
      },
    } as unknown as JetStreamManager;
  }
}

const STREAMS = ["CAPA_INTAKE_0", "CAPA_INTAKE_1"] as const;

function setup() {
  let clock = 1_000;
  const now = () => clock;
  const repo = new JobRepo(new TypedKv<Job>(memoryKv(), jsonCodec<Job>()), now);
  // The budgets store answers nothing until `unstick` (a budgets stream without a leader), then reserves 7.
  let unstick: () => void = () => {};
  const stuck = new Promise<void>((r) => {
    unstick = r;
  });
  const { service, reservations } = memoryJobService(repo, now, () => stuck);
  const streams = new MemoryStreams(STREAMS);
  const metrics = new SchedulerMetrics();
  const index = new PendingIndex(repo);
  service.useFallback(
    new IntakeFallback(new IntakeWriter(streams.js(), streams.jsm(), 50), index, metrics, silent, 10),
  );
  // Every replica follows both streams into its index (as startIntake does).
  const followers = STREAMS.map((s) =>
    followIntake(
      streams.jsm(),
      s,
      (m) => (m.entry.kind === "submission" ? index.add(m.entry.submission, m.stream) : index.cancel(m.entry.cancel)),
      silent,
      5,
    ),
  );
  /** A leader's materialiser; `ownIndex` false: a new leader whose index has read nothing yet. */
  const materialiser = (ownIndex = true) =>
    new Materialiser({
      jsm: streams.jsm(),
      jobs: service,
      index: ownIndex ? index : new PendingIndex(repo),
      metrics,
      logger: silent,
      followIntervalMs: 5,
    });
  const written = async (jobId: string) => {
    for (;;) {
      const e = repo.get(jobId);
      if (e) return e;
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  const stop = () => Promise.all(followers.map((f) => f.stop()));
  return {
    service,
    repo,
    index,
    streams,
    reservations,
    unstick,
    materialiser,
    written,
    stop,
    tick: (ms: number) => {
      clock += ms;
    },
  };
}

const submit = (s: ReturnType<typeof setup>, tenant: string, requestId = "") =>
  s.service.submit({ requestId, tenant, spec }).then((r) => r.job);

describe("ListJobs lists jobs acknowledged from the intake", () => {
  it("by the same tenant and state filters, in created order, without duplicates across a materialisation", async () => {
    const s = setup();
    s.unstick(); // the first two take the normal path
    const old = await submit(s, "acme");
    s.tick(10);
    const otherTenant = await submit(s, "globex");
    s.tick(10);
    // From here the job writes stall: the next two are acknowledged from the intake.
    const jobsKv = s.repo.kv.kv;
    const create = jobsKv.create.bind(jobsKv);
    let release: () => void = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    jobsKv.create = async (key: string, value: Uint8Array) => {
      await held;
      return create(key, value);
    };
    const p1 = await submit(s, "acme", "p1");
    s.tick(10);
    const p2 = await submit(s, "acme", "p2");
    expect(s.repo.summary(p1.id)).toBeUndefined();

    const ids = (tenant: string, states: Job["state"][] = []) =>
      s.service.matching({ tenant, states, limit: 0 }).map((j) => j.id);
    expect(ids("acme")).toEqual([p2.id, p1.id, old.id]);
    expect(ids("globex")).toEqual([otherTenant.id]);
    expect(ids("", ["pending"])).toEqual([p2.id, p1.id, otherTenant.id, old.id]);
    expect(ids("acme", ["running"])).toEqual([]);
    expect(
      (await s.service.jobsOf(s.service.matching({ tenant: "acme", states: [], limit: 0 }))).map((j) => j.id),
    ).toEqual([p2.id, p1.id, old.id]);

    // One job a page, as the gRPC edge pages; the jobs are written between the first and the second page.
    const page = (pageToken: string) =>
      pageByKey(s.service.matching({ tenant: "acme", states: [], limit: 1 }), {
        pageToken,
        size: 1,
        filter: ["jobs", "acme", []],
        key: (j) => [-j.createdAtMs, j.id],
        compare: compareKeys,
      });
    const first = page("");
    const m = s.materialiser();
    m.start();
    release();
    await s.written(p1.id);
    await s.written(p2.id);
    const seen = [...first.items];
    for (let token = first.nextPageToken; token !== ""; ) {
      const next = page(token);
      seen.push(...next.items);
      token = next.nextPageToken;
    }
    expect(seen.map((j) => j.id)).toEqual([p2.id, p1.id, old.id]);
    expect(seen.map((j) => j.revision > 0)).toEqual([false, true, true]);
    await m.stop();
    await s.stop();
  });
});

describe("CancelJob on a job acknowledged from the intake", () => {
  it("is accepted durably, answered cancelled, and the job is written cancelled by a new leader, never reserved", async () => {
    const s = setup();
    const job = await submit(s, "acme", "c1");
    expect((await s.service.entry(job.id)).revision).toBe(0);

    const answered = await s.service.cancel(job.id, "changed my mind");
    expect([answered.state, answered.cancelRequested, answered.reason]).toEqual([
      "cancelled",
      true,
      "cancelled: changed my mind",
    ]);
    // In the submission's own stream, after it.
    const stream = STREAMS.find((n) => s.streams.entries(n).length > 0)!;
    expect(s.streams.entries(stream).map((e) => e.entry.kind)).toEqual(["submission", "cancel"]);
    // Every read answers it cancelled meanwhile; a repeated cancel writes nothing more.
    expect((await s.service.get(job.id)).state).toBe("cancelled");
    expect((await s.service.cancel(job.id, "again")).reason).toBe("cancelled: changed my mind");
    expect(s.streams.entries(stream)).toHaveLength(2);
    expect(s.service.matching({ tenant: "acme", states: ["cancelled"], limit: 0 }).map((j) => j.id)).toEqual([job.id]);

    // A new leader, whose index has read nothing: the intent is found in the stream, the job written cancelled
    // while the budgets store is still stuck (a cancelled job reserves nothing).
    const m = s.materialiser(false);
    m.start();
    const entry = await s.written(job.id);
    expect([entry.job.state, entry.job.reserved, entry.job.cancelRequested]).toEqual(["cancelled", 0, true]);
    expect(entry.job.tasks.map((t) => t.state)).toEqual(["cancelled"]);
    await untilEmpty(s.streams);
    expect(s.reservations.size).toBe(0);
    expect((await s.service.cancel(job.id, "")).state).toBe("cancelled");
    await m.stop();
    s.unstick();
    await s.stop();
  });

  it("cancels the written record when the intent lands while the job is being written", async () => {
    const s = setup();
    const m = s.materialiser();
    m.start();
    const job = await submit(s, "acme");
    // The materialiser is stuck on the reservation; the cancel is accepted meanwhile.
    expect((await s.service.cancel(job.id, "")).state).toBe("cancelled");
    s.unstick();
    const cancelled = await until(async () => {
      const e = s.repo.get(job.id);
      return e?.job.state === "cancelled" ? e : undefined;
    });
    expect(cancelled.job.reason).toBe("cancelled by request");
    await untilEmpty(s.streams);
    await m.stop();
    await s.stop();
  });

  it("never cancels another tenant's job, even from a forged intent in the stream", async () => {
    const s = setup();
    const job = await submit(s, "acme");
    const stream = STREAMS.find((n) => s.streams.entries(n).length > 0)!;
    const forged = { jobId: job.id, tenant: "mallory", reason: "mine", atMs: 1 };
    s.streams.put(stream, `capa.v1.intake.${STREAMS.indexOf(stream)}.${job.id}`, encodeCancel(forged));
    expect(s.index.cancel(forged)).toBe(false);
    await until(async () => s.streams.entries(stream).length === 2);
    expect((await s.service.get(job.id)).state).toBe("pending");
    s.unstick();
    const m = s.materialiser();
    m.start();
    const entry = await s.written(job.id);
    await untilEmpty(s.streams);
    expect(s.repo.get(job.id)!.job.state).toBe("pending");
    expect(entry.job.cancelRequested).toBe(false);
    expect(await s.service.applyCancelIntent(forged)).toBe("other tenant");
    await m.stop();
    await s.stop();
  });

  it("is UNAVAILABLE (not accepted) while the stream holding the submission answers nothing", async () => {
    const s = setup();
    const job = await submit(s, "acme");
    const stream = STREAMS.find((n) => s.streams.entries(n).length > 0)!;
    await until(async () => s.index.entry(job.id));
    s.streams.down.add(stream);
    await expect(s.service.cancel(job.id, "")).rejects.toMatchObject({ code: "UNAVAILABLE" });
    expect((await s.service.get(job.id)).state).toBe("pending");
    s.unstick();
    await s.stop();
  });
});

describe("intake envelopes and the cancel transition", () => {
  it("reads a submission without a kind (the first form) and round-trips a cancel intent", () => {
    const job = jobOf("j1", "pending", []);
    const legacy = JSON.parse(new TextDecoder().decode(encodePending({ job, specDigest: "d" })));
    expect(legacy.kind).toBeUndefined();
    expect(decodePending(encodePending({ job, specDigest: "d" })).job.id).toBe("j1");
    const intent = { jobId: "j1", tenant: "acme", reason: "r", atMs: 5 };
    expect(decodeIntake(encodeCancel(intent))).toEqual({ kind: "cancel", cancel: intent });
    expect(() => decodePending(encodeCancel(intent))).toThrow(/not an intake submission/);
    expect(() => decodeIntake(new TextEncoder().encode('{"v":1,"kind":"cancel","jobId":1}'))).toThrow();
  });

  it("cancels a waiting job once; a final or cancel-requested one is left alone", () => {
    const job = (state: Job["state"]) =>
      jobOf("j", state, [{ ...newTask("j", 0), state: state === "pending" ? "pending" : "succeeded" }]);
    const cancelled = requestCancel(job("pending"), "", 9)!;
    expect([cancelled.state, cancelled.reason, cancelled.finishedAtMs]).toEqual([
      "cancelled",
      "cancelled by request",
      9,
    ]);
    expect(requestCancel(cancelled, "again", 10)).toBeUndefined();
    expect(requestCancel(job("succeeded"), "", 9)).toBeUndefined();
  });
});

async function until<T>(probe: () => Promise<T | undefined | false>): Promise<T> {
  for (;;) {
    const v = await probe();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 5));
  }
}

function untilEmpty(streams: MemoryStreams): Promise<true> {
  return until(async () => STREAMS.every((n) => streams.entries(n).length === 0) || undefined);
}

function jobOf(id: string, state: Job["state"], tasks: Job["tasks"]): Job {
  return testJob(id, { spec, state, tasks });
}
