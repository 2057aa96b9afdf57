// JobRepo keeps active jobs in memory and only a bounded number of retired ones; everything else is read back
// from KV, and every job keeps its summary (ListJobs, retention, epochs) until it is purged.
import { decode, encode, TypedKv } from "@capa/bus";
import { defaultJobSpec, type Job, newTask, type Task } from "@capa/domain";
import { describe, expect, it } from "vitest";
import { memoryKv } from "../market/memory-kv.test-helper.js";
import { isRetired, JobRepo } from "./job-repo.js";

function job(id: string, state: Job["state"], tasks: Partial<Task>[] = [{}]): Job {
  return {
    id,
    tenant: "acme",
    requestId: `r-${id}`,
    spec: defaultJobSpec({ gpusPerReplica: 1 }),
    state,
    reason: "",
    tasks: tasks.map((t, i) => ({ ...newTask(id, i), ...t })),
    createdAtMs: 1_000,
    updatedAtMs: 1_000,
    finishedAtMs: state === "succeeded" || state === "failed" ? 2_000 : 0,
    cancelRequested: false,
    spent: 0,
    reserved: 0,
  };
}

const done = (id: string, epoch = 1) =>
  job(id, "succeeded", [{ state: "succeeded", epoch, agentId: "a1", finishedAtMs: 2_000 }]);

function repo(cacheSize: number) {
  const kv = new TypedKv<Job>(memoryKv(), { encode: encode.job, decode: decode.job });
  return { kv, jobs: new JobRepo(kv, () => 5_000, cacheSize) };
}

describe("JobRepo memory bound", () => {
  it("holds at most the cache size of retired jobs and reads older ones back from KV", async () => {
    const { jobs } = repo(3);
    for (let i = 0; i < 10; i++) await jobs.create(done(`j${i}`));
    expect(jobs.cachedRetired).toBe(3);
    expect(jobs.size).toBe(10);
    // The oldest left memory (sync read: undefined) but is still there (KV).
    expect(jobs.get("j0")).toBeUndefined();
    const back = await jobs.fetch("j0");
    expect(back?.job.id).toBe("j0");
    // Read back into the LRU, still bounded.
    expect(jobs.get("j0")?.job.id).toBe("j0");
    expect(jobs.cachedRetired).toBe(3);
    expect(jobs.listActive()).toEqual([]);
  });

  it("keeps active jobs whatever the bound, including a final job whose sibling still holds an allocation", async () => {
    const { jobs } = repo(1);
    const gang = job("jgang", "failed", [
      { state: "failed", epoch: 2, agentId: "a1", finishedAtMs: 2_000 },
      { state: "running", epoch: 3, agentId: "a2" },
    ]);
    expect(isRetired(gang)).toBe(false);
    await jobs.create(gang);
    for (let i = 0; i < 5; i++) await jobs.create(job(`jp${i}`, "pending"));
    for (let i = 0; i < 5; i++) await jobs.create(done(`jd${i}`));
    expect(
      jobs
        .listActive()
        .map((e) => e.job.id)
        .sort(),
    ).toEqual(["jgang", "jp0", "jp1", "jp2", "jp3", "jp4"]);
    expect(jobs.cachedRetired).toBe(1);
    // The sibling ends: the job retires and becomes an LRU candidate like any other.
    const current = jobs.get("jgang")!;
    const ended = structuredClone(current.job);
    ended.tasks[1] = { ...ended.tasks[1]!, state: "cancelled", finishedAtMs: 3_000 };
    await jobs.write(current, ended);
    expect(jobs.listActive().some((e) => e.job.id === "jgang")).toBe(false);
    expect(jobs.summary("jgang")).toMatchObject({ state: "failed", maxEpoch: 3, endedAllocations: 2 });
  });

  it("mutates a job that left memory through KV, with CAS", async () => {
    const { jobs } = repo(1);
    await jobs.create(done("jold"));
    await jobs.create(done("jnew"));
    expect(jobs.get("jold")).toBeUndefined();
    const after = await jobs.mutate("jold", (j) => ({ ...j, reason: "annotated" }));
    expect(after?.job.reason).toBe("annotated");
    expect((await jobs.fetch("jold"))?.job.reason).toBe("annotated");
    expect(jobs.summary("jold")?.revision).toBe(after?.revision);
  });

  it("forgets a purged job entirely (memory, summary) and loads summaries of everything at start", async () => {
    const { kv, jobs } = repo(2);
    for (let i = 0; i < 4; i++) await jobs.create(done(`j${i}`, 10 + i));
    const entry = await jobs.fetch("j0");
    expect(await jobs.purge(entry!)).toBe(true);
    expect(jobs.summary("j0")).toBeUndefined();
    expect(await jobs.fetch("j0")).toBeUndefined();

    const restarted = new JobRepo(kv, () => 5_000, 2);
    expect(await restarted.load(() => {})).toBe(3);
    expect(restarted.cachedRetired).toBe(2);
    expect(Math.max(...[...restarted.allSummaries()].map((s) => s.maxEpoch))).toBe(13);
  });
});

describe("JobRepo after the store went back (every NATS server killed; the stream restarted from what it had flushed)", () => {
  it("a mutation that conflicts takes the store's lower revision as the truth and commits on it", async () => {
    // The repo saw revision 5 of the job; the store restarted with only its revision 1 (and a newer key since).
    const raw = memoryKv();
    const kv = new TypedKv<Job>(raw, { encode: encode.job, decode: decode.job });
    const restarted = new JobRepo(kv, () => 5_000, 10);
    const first = await kv.create("jb", job("jb", "pending"));
    restarted.observe({ job: { ...job("jb", "running"), reason: "lost write" }, revision: first + 4 });
    const out = await restarted.mutate("jb", (j) => ({ ...j, reason: "after the restart" }));
    expect(out?.job.reason).toBe("after the restart");
    expect(out?.job.state).toBe("pending"); // built on the store's value, not the lost one
    expect((await kv.get("jb"))?.revision).toBe(out?.revision);
    expect(restarted.get("jb")?.revision).toBe(out?.revision);
  });
});

describe("JobRepo watch entries during own writes", () => {
  it("takes a job's watch entries after its write is answered: its own not decoded, another writer's in order", async () => {
    const { kv, jobs } = repo(10);
    await jobs.create(job("j1", "pending"));
    const stored = async () => (await kv.get("j1"))!;
    // The store answers our write only when told to; the watch meanwhile delivers it, then another writer's.
    let answer!: () => void;
    const update = kv.update.bind(kv);
    kv.update = async (key, value, revision) => {
      const rev = await update(key, value, revision);
      await new Promise<void>((r) => {
        answer = r;
      });
      return rev;
    };
    const seen: string[] = [];
    jobs.onChange((e) => seen.push(`${e.revision}:${e.job.reason}`));
    const writing = jobs.write(jobs.get("j1")!, { ...jobs.get("j1")!.job, reason: "ours" });
    while (!answer) await new Promise((r) => setImmediate(r));
    const ours = await stored();
    const watched = (e: { value: Job; revision: number }) => ({
      key: "j1",
      value: encode.job(e.value),
      revision: e.revision,
      deleted: false,
    });
    jobs.observeWatched(watched(ours));
    kv.update = update;
    const theirs = { ...ours.value, reason: "theirs" };
    const theirRevision = await kv.update("j1", theirs, ours.revision);
    jobs.observeWatched(watched({ value: theirs, revision: theirRevision }));
    expect(seen).toEqual([]); // held while our write is unanswered
    answer();
    await writing;
    expect(seen).toEqual([`${ours.revision}:ours`, `${theirRevision}:theirs`]);
    expect(jobs.get("j1")!.job.reason).toBe("theirs");
  });
});
