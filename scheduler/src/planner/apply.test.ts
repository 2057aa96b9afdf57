import { decode, encode, subjects, type TypedKv, type Versioned } from "@capa/bus";
import {
  type Advert,
  type AgentAssignments,
  type Checkpoint,
  ConflictError,
  defaultJobSpec,
  type Job,
  newTask,
} from "@capa/domain";
import { pino } from "pino";
import { describe, expect, it, vi } from "vitest";
import { AgentRegistry } from "../agents/registry.js";
import { testJob } from "../jobs/job.test-helper.js";
import { SchedulerMetrics } from "../metrics.js";
import { AllocRepo } from "../store/alloc-repo.js";
import { JobRepo } from "../store/job-repo.js";
import type { AgentRecord } from "../store/records.js";
import { WatchBehind } from "../store/watch.js";
import { StatusConsumer } from "../tasks/status-consumer.js";
import { JobCommitUncertain, PlanApplier } from "./apply.js";
import { clusterSync } from "./cluster-sync.js";
import { createPlacement, type Placement, type Plan } from "./engine.js";
import { EpochSource } from "./epochs.js";
import { EvalQueue } from "./eval-queue.js";
import { ExplanationStore } from "./explanations.js";
import { type PlannerDeps, PlannerWorker } from "./worker.js";

/** An in-memory stand-in for a KV bucket with the same CAS rules (revision per write, conflict on mismatch). */
class MemoryKv<T> {
  private readonly data = new Map<string, { value: T; revision: number }>();
  private seq = 0;
  /** Writes that reached the store (create + update). */
  writes = 0;
  // One store, no replicas: the leader read is the same read.
  getLatest(key: string) {
    return this.get(key);
  }
  async get(key: string): Promise<Versioned<T> | undefined> {
    const e = this.data.get(key);
    return e && { key, value: structuredClone(e.value), revision: e.revision };
  }
  async create(key: string, value: T): Promise<number> {
    if (this.data.has(key)) throw new ConflictError(`key ${key} already exists`);
    this.writes++;
    return this.put(key, value);
  }
  async update(key: string, value: T, revision: number): Promise<number> {
    if (this.data.get(key)?.revision !== revision) throw new ConflictError(`key ${key} changed`);
    this.writes++;
    return this.put(key, value);
  }
  async write(key: string, value: T, revision: number): Promise<number> {
    return revision === 0 ? this.create(key, value) : this.update(key, value, revision);
  }
  async keys(): Promise<string[]> {
    return [...this.data.keys()];
  }
  async list(): Promise<Versioned<T>[]> {
    return [...this.data.entries()].map(([key, e]) => ({ key, value: structuredClone(e.value), revision: e.revision }));
  }
  async mutate(key: string, change: (current: T | undefined) => T | undefined): Promise<Versioned<T> | undefined> {
    const current = await this.get(key);
    const next = change(current?.value);
    if (next === undefined) return current;
    return { key, value: next, revision: await this.write(key, next, current?.revision ?? 0) };
  }
  /** A write behind the scheduler's back (another process). */
  put(key: string, value: T): number {
    this.seq++;
    this.data.set(key, { value: structuredClone(value), revision: this.seq });
    return this.seq;
  }
}

const asKv = <T>(m: MemoryKv<T>) => m as unknown as TypedKv<T>;

function advert(agentId: string): Advert {
  return {
    agentId,
    region: "eu-west",
    zone: "eu-west-a",
    hostname: agentId,
    gpus: [0, 1, 2, 3].map((index) => ({
      index,
      uuid: `GPU-${agentId}-${index}`,
      model: "H100-80GB",
      vramMib: 81920,
      health: "ok" as const,
      migEnabled: false,
      utilizationPct: 0,
      memoryUsedMib: 0,
      temperatureC: 0,
      driverVersion: "",
    })),
    cpuCores: 8,
    memoryMib: 1000,
    labels: {},
    fabricDomain: "",
    prices: [{ gpuModel: "H100-80GB", onDemandPerHour: 2_000_000, interruptiblePerHour: 0 }],
    simulated: true,
    sequence: 1,
    sentAtMs: 0,
    ttlSeconds: 30,
    version: "t",
    bootId: "b",
    provider: "p",
    residency: "eu",
    reliability: 1,
  };
}

function placement(replica: number, agentId: string, gpuIndices: number[]): Placement {
  return {
    replica,
    agentId,
    region: "eu-west",
    gpuModel: "H100-80GB",
    gpuIndices,
    pricePerGpuHour: 2_000_000,
    interruptible: false,
    score: 1,
    scores: {},
  };
}

function plan(jobId: string, placements: Placement[]): Plan {
  return {
    jobId,
    outcome: "placed",
    placements,
    preemptions: [],
    explanation: {
      jobId,
      outcome: "placed",
      profile: "cheapest",
      candidatesConsidered: 0,
      rejections: {},
      chosen: placements,
      runnerUp: [],
      relaxation: "",
      preemptedTaskIds: [],
      summary: [],
      decidedAtMs: 0,
      seed: 1,
      estimatedCost: 0,
    },
  };
}

/** A pending training job of `replicas` × 4 GPUs, as submitted. */
function pendingTraining(id: string, replicas: number): Job {
  return testJob(id, {
    spec: defaultJobSpec({ kind: "training", replicas, gpusPerReplica: 4 }),
    tasks: Array.from({ length: replicas }, (_, i) => newTask(id, i)),
  });
}

async function setup() {
  const now = () => 1000;
  const log = pino({ level: "silent" });
  const { cluster, engine } = createPlacement();
  const allocKv = new MemoryKv<AgentAssignments>();
  const jobKv = new MemoryKv<Job>();
  const allocs = new AllocRepo(asKv(allocKv), now);
  const jobs = new JobRepo(asKv(jobKv), now);
  const registry = new AgentRegistry(asKv(new MemoryKv<AgentRecord>()), cluster, now, undefined);
  allocs.onChange(clusterSync(cluster, () => ({ priority: 0, interruptible: false }), log));
  registry.onAdvert(advert("a1"));
  registry.onAdvert(advert("a2"));
  const { revision } = await jobs.create(pendingTraining("jgang", 2));
  const applier = new PlanApplier(allocs, jobs, registry, now, log);
  const gang = plan("jgang", [placement(0, "a1", [0, 1, 2, 3]), placement(1, "a2", [0, 1, 2, 3])]);
  return { cluster, engine, allocKv, allocs, jobs, registry, applier, gang, revision, jobKv };
}

/** A status consumer on the setup's repos (no stream: reports are handed to `handle`). */
function statusConsumer(
  s: Awaited<ReturnType<typeof setup>>,
  over: Partial<ConstructorParameters<typeof StatusConsumer>[0]> = {},
): StatusConsumer {
  return new StatusConsumer({
    store: undefined as never,
    jobs: s.jobs,
    allocs: s.allocs,
    applier: s.applier,
    metrics: new SchedulerMetrics(),
    logger: pino({ level: "silent" }),
    now: () => 2000,
    evaluate: () => {},
    capacityFreed: () => {},
    ...over,
  });
}

/** A report of the gang "jgang" (epoch 46) as an agent sends it; started at 1500, a final one ended at 1800. */
function gangReport(taskId: string, agentId: string, state: "starting" | "running" | "succeeded"): Uint8Array {
  return encode.status({
    taskId,
    jobId: "jgang",
    agentId,
    epoch: 46,
    state,
    exitCode: 0,
    signal: "",
    startedAtMs: state === "starting" ? 0 : 1500,
    finishedAtMs: state === "succeeded" ? 1800 : 0,
    message: "",
    sentAtMs: 1900,
    bootId: "b",
  });
}

/** Takes the job's lock and keeps it until `release` (resolves once it is held). */
async function holdLock(jobs: JobRepo, jobId: string): Promise<{ held: Promise<void>; release: () => void }> {
  let release: (() => void) | undefined;
  const held = jobs.withLock(
    jobId,
    () =>
      new Promise<void>((r) => {
        release = r;
      }),
  );
  while (!release) await new Promise((r) => setImmediate(r));
  return { held, release };
}

describe("plan applier", () => {
  it("commits every assignment with one epoch, then the job, and the cluster state follows", async () => {
    const s = await setup();
    const result = await s.applier.commit(s.jobs.get("jgang")!, s.gang, 42);
    expect(result.ok).toBe(true);
    const job = s.jobs.get("jgang")!.job;
    expect(job.state).toBe("placed");
    expect(job.tasks.map((t) => [t.state, t.agentId, t.epoch, t.gpuModel])).toEqual([
      ["assigned", "a1", 42, "H100-80GB"],
      ["assigned", "a2", 42, "H100-80GB"],
    ]);
    expect(job.tasks[0]!.gpuUuids).toEqual(["GPU-a1-0", "GPU-a1-1", "GPU-a1-2", "GPU-a1-3"]);
    expect((await s.allocKv.get("a1"))?.value.tasks.map((t) => [t.taskId, t.epoch, t.stop])).toEqual([
      ["jgang-0", 42, false],
    ]);
    expect(s.cluster.freeGpuIndices("a1")).toEqual([]);
    expect(s.cluster.freeGpuIndices("a2")).toEqual([]);
  });

  it("a training gang's placement names one checkpoint, the gang's, in every assignment and on every task", async () => {
    const s = await setup();
    // Generation 1 ran on a1 only (rank 0 saved, as torchrun scripts do); rank 1 has no checkpoint of its own.
    const rank0: Checkpoint = {
      name: "step-40",
      sizeBytes: 10,
      createdAtMs: 900,
      taskId: "jgang-0",
      epoch: 41,
      agentId: "a1",
      attempt: 1,
      copy: "stored",
      copyNote: "",
      object: "jgang-0/41/step-40",
    };
    const before = s.jobs.get("jgang")!;
    const job = structuredClone(before.job);
    job.spec.checkpoint = { dir: "", everySeconds: 0 };
    job.tasks[0]!.checkpoint = rank0;
    await s.jobs.write(before, job);
    expect((await s.applier.commit(s.jobs.get("jgang")!, s.gang, 42)).ok).toBe(true);
    for (const agentId of ["a1", "a2"])
      expect((await s.allocKv.get(agentId))?.value.tasks.map((t) => t.resumeFrom)).toEqual([rank0]);
    expect(s.jobs.get("jgang")!.job.tasks.map((t) => t.resumeFrom)).toEqual([rank0, rank0]);
  });

  it("rolls a gang back when one agent's GPUs were taken meanwhile, and never over-commits", async () => {
    const s = await setup();
    // Another writer took GPU 2 on a2 after the plan was made.
    s.allocKv.put("a2", {
      agentId: "a2",
      updatedAtMs: 0,
      tasks: [
        {
          taskId: "jother-0",
          jobId: "jother",
          replica: 0,
          gpuIndices: [2],
          template: { command: ["x"], env: {}, workingDir: "", killGraceSeconds: 1 },
          epoch: 7,
          pricePerGpuHour: 1,
          tenant: "t",
          assignedAtMs: 0,
          stop: false,
          stopReason: "",
        },
      ],
    });
    const result = await s.applier.commit(s.jobs.get("jgang")!, s.gang, 43);
    expect(result).toEqual({ ok: false, reason: "GPU 2 on a2 is taken" });
    expect((await s.allocKv.get("a1"))?.value.tasks).toEqual([]);
    expect((await s.allocKv.get("a2"))?.value.tasks.map((t) => t.taskId)).toEqual(["jother-0"]);
    expect(s.jobs.get("jgang")!.job.state).toBe("pending");
    expect(s.cluster.freeGpuIndices("a1")).toEqual([0, 1, 2, 3]);
    expect(s.cluster.freeGpuIndices("a2")).toEqual([0, 1, 3]);
  });

  it("keeps the assignments when the job commit's outcome is unknown (store timeout), for the retry to adopt", async () => {
    const s = await setup();
    const timeout = Object.assign(new Error("timeout"), { name: "TimeoutError" });
    const update = s.jobKv.update.bind(s.jobKv);
    s.jobKv.update = async () => {
      throw timeout;
    };
    const err = await s.applier.commit(s.jobs.get("jgang")!, s.gang, 43).catch((e: unknown) => e);
    s.jobKv.update = update;
    expect(err).toBeInstanceOf(JobCommitUncertain);
    expect((err as JobCommitUncertain).cause).toBe(timeout);
    // An agent may already run them: removing them and planning again would run the tasks twice.
    expect((await s.allocKv.get("a1"))?.value.tasks.map((t) => [t.taskId, t.epoch])).toEqual([["jgang-0", 43]]);
    expect((await s.allocKv.get("a2"))?.value.tasks.map((t) => [t.taskId, t.epoch])).toEqual([["jgang-1", 43]]);
    expect(s.jobs.get("jgang")!.job.tasks.map((t) => t.state)).toEqual(["pending", "pending"]);
  });

  it("an assignment write that timed out may have landed: kept for adoption (one agent), rolled back (a gang)", async () => {
    const s = await setup();
    const timeout = Object.assign(new Error("timeout"), { name: "TimeoutError" });
    const write = s.allocKv.write.bind(s.allocKv);
    s.allocKv.write = async (key, value, revision) => {
      const revisionWritten = await write(key, value, revision); // it lands, but the caller only sees the timeout
      if (key === "a2") throw timeout;
      return revisionWritten;
    };
    // A gang over a1 and a2: all or nothing, so the write that may have landed is rolled back with a1's.
    await expect(s.applier.commit(s.jobs.get("jgang")!, s.gang, 45)).rejects.toBe(timeout);
    expect((await s.allocKv.get("a1"))?.value.tasks).toEqual([]);
    expect((await s.allocKv.get("a2"))?.value.tasks).toEqual([]);
    // One task on a2 alone: kept, for the re-plan to adopt instead of running the task twice.
    const single = plan("jgang", [placement(1, "a2", [0, 1, 2, 3])]);
    const err = await s.applier.commit(s.jobs.get("jgang")!, single, 46).catch((e: unknown) => e);
    s.allocKv.write = write;
    expect(err).toBeInstanceOf(JobCommitUncertain);
    expect((await s.allocKv.get("a2"))?.value.tasks.map((t) => [t.taskId, t.epoch])).toEqual([["jgang-1", 46]]);
  });

  it("still rolls the assignments back when the job commit is refused (a conflict, not an unknown outcome)", async () => {
    const s = await setup();
    s.jobKv.update = async () => {
      throw new ConflictError("key jgang changed");
    };
    await expect(s.applier.commit(s.jobs.get("jgang")!, s.gang, 44)).rejects.toBeInstanceOf(ConflictError);
    expect((await s.allocKv.get("a1"))?.value.tasks).toEqual([]);
    expect((await s.allocKv.get("a2"))?.value.tasks).toEqual([]);
  });

  it("refuses a draining agent", async () => {
    const s = await setup();
    await s.registry.setDraining("a2", true);
    const result = await s.applier.commit(s.jobs.get("jgang")!, s.gang, 44);
    expect(result).toEqual({ ok: false, reason: "agent a2 is not taking work" });
    expect((await s.allocKv.get("a1"))?.value.tasks ?? []).toEqual([]);
  });

  it("stops and removes listings only for the named epoch", async () => {
    const s = await setup();
    await s.applier.commit(s.jobs.get("jgang")!, s.gang, 45);
    await s.applier.changeListings([{ agentId: "a1", taskId: "jgang-0", epoch: 44, reason: "old" }], []);
    expect((await s.allocKv.get("a1"))?.value.tasks[0]?.stop).toBe(false);
    await s.applier.changeListings([{ agentId: "a1", taskId: "jgang-0", epoch: 45, reason: "cancelled" }], []);
    expect((await s.allocKv.get("a1"))?.value.tasks[0]).toMatchObject({ stop: true, stopReason: "cancelled" });
    expect(s.cluster.freeGpuIndices("a1")).toEqual([]); // a stopping task holds its GPUs until it is final
    const freed = await s.applier.changeListings([], [{ agentId: "a1", taskId: "jgang-0", epoch: 45 }]);
    expect(freed).toBe(true);
    expect(s.cluster.freeGpuIndices("a1")).toEqual([0, 1, 2, 3]);
  });

  it("merges the commits of many jobs on one agent into one assignment write, and refuses a GPU planned twice", async () => {
    const s = await setup();
    const singles = ["j1", "j2", "j3", "j4"];
    for (const id of singles)
      await s.jobs.create({
        ...s.jobs.get("jgang")!.job,
        id,
        spec: defaultJobSpec({ kind: "batch", replicas: 1, gpusPerReplica: 1 }),
        tasks: [newTask(id, 0)],
      });
    const before = s.allocKv.writes;
    // j4 was planned on the GPU j1 got (two stale plans): exactly one of them may hold it.
    const gpuOf: Record<string, number> = { j1: 0, j2: 1, j3: 2, j4: 0 };
    const results = await Promise.all(
      singles.map((id, i) =>
        s.jobs.withLock(id, () =>
          s.applier.commit(s.jobs.get(id)!, plan(id, [placement(0, "a1", [gpuOf[id]!])]), 50 + i),
        ),
      ),
    );
    expect(results.map((r) => r.ok)).toEqual([true, true, true, false]);
    expect(results[3]).toEqual({ ok: false, reason: "GPU 0 on a1 is taken" });
    expect(s.allocKv.writes - before).toBe(1);
    expect((await s.allocKv.get("a1"))?.value.tasks.map((t) => [t.taskId, t.gpuIndices])).toEqual([
      ["j1-0", [0]],
      ["j2-0", [1]],
      ["j3-0", [2]],
    ]);
    expect(s.jobs.get("j4")!.job.state).toBe("pending");
    expect(s.cluster.freeGpuIndices("a1")).toEqual([3]);
  });

  it("folds the reports of one job queued behind its lock into one job write", async () => {
    const s = await setup();
    await s.applier.commit(s.jobs.get("jgang")!, s.gang, 46);
    const evaluated: string[] = [];
    const statuses = statusConsumer(s, { evaluate: (jobId) => evaluated.push(jobId) });
    const report = gangReport;
    const writesBefore = s.jobKv.writes;
    const { held, release } = await holdLock(s.jobs, "jgang");
    const handled = Promise.all([
      statuses.handle(subjects.taskStatus("jgang-0", "a1"), report("jgang-0", "a1", "running")),
      statuses.handle(subjects.taskStatus("jgang-0", "a1"), report("jgang-0", "a1", "succeeded")),
      statuses.handle(subjects.taskStatus("jgang-1", "a2"), report("jgang-1", "a2", "succeeded")),
    ]);
    release();
    await held;
    await handled;
    expect(s.jobKv.writes - writesBefore).toBe(1);
    const job = s.jobs.get("jgang")!.job;
    expect(job.state).toBe("succeeded");
    expect(job.tasks.map((t) => [t.state, t.startedAtMs, t.finishedAtMs])).toEqual([
      ["succeeded", 1500, 1800],
      ["succeeded", 1500, 1800],
    ]);
    // Both final reports removed their listings: the job is final with nothing listed, so no evaluation.
    expect((await s.allocKv.get("a1"))?.value.tasks).toEqual([]);
    expect((await s.allocKv.get("a2"))?.value.tasks).toEqual([]);
    expect(evaluated).toEqual([]);
  });

  it("asks for an evaluation after a state change that leaves work: a sibling to stop, a task still running", async () => {
    const s = await setup();
    await s.applier.commit(s.jobs.get("jgang")!, s.gang, 46);
    const evaluated: string[] = [];
    const statuses = statusConsumer(s, { evaluate: (jobId) => evaluated.push(jobId) });
    await statuses.handle(subjects.taskStatus("jgang-0", "a1"), gangReport("jgang-0", "a1", "running"));
    expect(evaluated).toEqual(["jgang"]); // running, in a training gang (restarts, growth): evaluated
    const failed = encode.status({ ...decode.status(gangReport("jgang-0", "a1", "succeeded")), state: "failed" });
    await statuses.handle(subjects.taskStatus("jgang-0", "a1"), failed);
    // The gang failed while jgang-1 is still listed on a2: its evaluation stops it.
    expect(s.jobs.get("jgang")!.job.state).toBe("failed");
    expect((await s.allocKv.get("a2"))?.value.tasks.map((t) => t.taskId)).toEqual(["jgang-1"]);
    expect(evaluated).toEqual(["jgang", "jgang"]);
  });

  it("asks for no evaluation when a batch job's task starts running where it is listed, but does with a stale listing", async () => {
    const s = await setup();
    const spec = defaultJobSpec({ kind: "batch", replicas: 1, gpusPerReplica: 1 });
    for (const id of ["jb1", "jb2"]) {
      await s.jobs.create({ ...s.jobs.get("jgang")!.job, id, spec, tasks: [newTask(id, 0)] });
      const gpu = id === "jb1" ? 0 : 1;
      expect((await s.applier.commit(s.jobs.get(id)!, plan(id, [placement(0, "a1", [gpu])]), 46)).ok).toBe(true);
    }
    // jb2 is also listed on a2 at an older epoch (a re-placement whose stop has not reached a2 yet).
    await s.allocs.mutate("a2", (tasks) => [...tasks, { ...s.allocs.listings("jb2-0")[0]!.assignment, epoch: 45 }]);
    const evaluated: string[] = [];
    const statuses = statusConsumer(s, { evaluate: (jobId) => evaluated.push(jobId) });
    const running = (jobId: string) =>
      encode.status({ ...decode.status(gangReport(`${jobId}-0`, "a1", "running")), jobId });
    await statuses.handle(subjects.taskStatus("jb1-0", "a1"), running("jb1"));
    await statuses.handle(subjects.taskStatus("jb2-0", "a1"), running("jb2"));
    expect(s.jobs.get("jb1")!.job.state).toBe("running");
    expect(s.jobs.get("jb2")!.job.state).toBe("running");
    // jb1 runs where it is listed: nothing to do. jb2's stale listing on a2 is for its evaluation to remove.
    expect(evaluated).toEqual(["jb2"]);
  });

  it("holds a starting report for the task's next one: one job write, and every job state still written", async () => {
    const s = await setup();
    await s.applier.commit(s.jobs.get("jgang")!, s.gang, 46);
    const statuses = (coalesceMs: number) => statusConsumer(s, { coalesceMs });
    const report = gangReport;
    // A wait no test outlasts: only the running report can end it.
    const held = statuses(3_600_000);
    let writes = s.jobKv.writes;
    const starting = held.handle(subjects.taskStatus("jgang-0", "a1"), report("jgang-0", "a1", "starting"));
    let answered = false;
    void starting.then(() => {
      answered = true;
    });
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(answered).toBe(false); // not acked: nothing is written yet
    expect(s.jobKv.writes).toBe(writes);
    await Promise.all([
      starting,
      held.handle(subjects.taskStatus("jgang-0", "a1"), report("jgang-0", "a1", "running")),
    ]);
    expect(s.jobKv.writes - writes).toBe(1);
    expect(s.jobs.get("jgang")!.job.state).toBe("running");
    expect(s.jobs.get("jgang")!.job.tasks.map((t) => t.state)).toEqual(["running", "assigned"]);
    // Without a next report, the starting one is folded once its wait is over (here: at once).
    writes = s.jobKv.writes;
    await statuses(0).handle(subjects.taskStatus("jgang-1", "a2"), report("jgang-1", "a2", "starting"));
    expect(s.jobKv.writes - writes).toBe(1);
    expect(s.jobs.get("jgang")!.job.tasks.map((t) => t.state)).toEqual(["running", "starting"]);
  });
});

describe("planner worker", () => {
  it("a capacity change re-enqueues waiting jobs, not one whose running evaluation will still plan", async () => {
    const s = await setup();
    const log = pino({ level: "silent" });
    const queue = new EvalQueue(() => 1000);
    const worker = new PlannerWorker({
      jobs: s.jobs,
      allocs: s.allocs,
      agents: s.registry,
      cluster: s.cluster,
      engine: s.engine,
      applier: s.applier,
      queue,
      epochs: new EpochSource(),
      explanations: new ExplanationStore(asKv(new MemoryKv()), log),
      metrics: new SchedulerMetrics(),
      logger: log,
      now: () => 1000,
      retryDelayMs: 10,
    });
    const batch = defaultJobSpec({ kind: "batch", replicas: 1, gpusPerReplica: 1 });
    for (const id of ["j1", "j2"])
      await s.jobs.create({ ...s.jobs.get("jgang")!.job, id, spec: batch, tasks: [newTask(id, 0)] });
    const taken = () => {
      const ids: string[] = [];
      for (let e = queue.take(); e; e = queue.take()) ids.push(e.jobId);
      return ids;
    };

    // j1's evaluation runs but waits for the job's lock (as behind a status fold): it has not planned yet.
    const { held, release } = await holdLock(s.jobs, "j1");
    const evaluation = worker.evaluate({ jobId: "j1", reason: "job changed", notBeforeMs: 0, attempt: 0 });
    worker.enqueueWaiting("capacity freed");
    // Its plan, still to come, sees the capacity: only the other waiting jobs are enqueued.
    expect(taken()).toEqual(["j2", "jgang"]);
    release();
    await held;
    await evaluation;
    expect(s.jobs.get("j1")!.job.state).toBe("placed");
    // Placed, j1 waits no more; the others still do (nothing evaluated them here).
    worker.enqueueWaiting("capacity freed");
    expect(taken()).toEqual(["j2", "jgang"]);
  });
});

describe("adopting a placement whose commit had an unknown outcome", () => {
  /** One task on a2 whose assignment write landed while the scheduler only saw a timeout (nor the watch, yet). */
  async function uncertainSolo() {
    const s = await setup();
    await s.jobs.create(pendingTraining("jsolo", 1));
    const write = s.allocKv.write.bind(s.allocKv);
    s.allocKv.write = async (key, value, revision) => {
      await write(key, value, revision);
      throw Object.assign(new Error("timeout"), { name: "TimeoutError" });
    };
    const err = await s.applier
      .commit(s.jobs.get("jsolo")!, plan("jsolo", [placement(0, "a2", [0, 1, 2, 3])]), 50)
      .catch((e: unknown) => e);
    s.allocKv.write = write;
    expect(err).toBeInstanceOf(JobCommitUncertain);
    expect(s.allocs.listings("jsolo-0")).toEqual([]); // landed in the store, not in this replica's cache
    const engine = {
      place: vi.fn(() => {
        throw new Error("the engine was asked to place jsolo-0 again");
      }),
    };
    const worker = new PlannerWorker({
      jobs: s.jobs,
      allocs: s.allocs,
      agents: s.registry,
      cluster: s.cluster,
      engine: engine as unknown as PlannerDeps["engine"],
      applier: s.applier,
      queue: new EvalQueue(() => 1000),
      epochs: new EpochSource(),
      explanations: { record: async () => undefined } as unknown as PlannerDeps["explanations"],
      metrics: new SchedulerMetrics(),
      logger: pino({ level: "silent" }),
      now: () => 1000,
      retryDelayMs: 10,
    });
    const adopt = () => worker.evaluate({ jobId: "jsolo", reason: "retry", notBeforeMs: 0, attempt: 1 }, true);
    return { s, engine, adopt };
  }

  it("waits for the assignments watch to catch up, then adopts the landed listing instead of placing again", async () => {
    const { s, engine, adopt } = await uncertainSolo();
    let caughtUp = 0;
    // The watch delivering what the store holds (scheduler.ts attaches the real one).
    s.allocs.follow({
      catchUp: async () => {
        caughtUp++;
        const e = (await s.allocKv.get("a2"))!;
        s.allocs.observe("a2", { value: e.value, revision: e.revision });
      },
    });
    await adopt();
    expect(caughtUp).toBe(1);
    expect(engine.place).not.toHaveBeenCalled();
    const task = s.jobs.get("jsolo")!.job.tasks[0]!;
    expect([task.state, task.agentId, task.epoch]).toEqual(["assigned", "a2", 50]);
  });

  it("without that wait the same evaluation places the task a second time (what the fault suite saw run twice)", async () => {
    const { engine, adopt } = await uncertainSolo();
    await expect(adopt()).rejects.toThrow(/place jsolo-0 again/);
    expect(engine.place).toHaveBeenCalledTimes(1);
  });

  it("an evaluation that cannot catch up fails (and is retried) before it decides anything", async () => {
    const { s, engine, adopt } = await uncertainSolo();
    s.allocs.follow({
      catchUp: async () => {
        throw new WatchBehind("capa_allocs", 3, 9);
      },
    });
    await expect(adopt()).rejects.toBeInstanceOf(WatchBehind);
    expect(engine.place).not.toHaveBeenCalled();
    expect(s.jobs.get("jsolo")!.job.tasks[0]!.state).toBe("pending");
  });
});
