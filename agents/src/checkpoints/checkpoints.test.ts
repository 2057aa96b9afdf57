import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TaskAssignment } from "@capa/domain";
import { afterEach, describe, expect, it } from "vitest";
import { checkpointDirOf, copyLocalCheckpoint, newestCheckpoint } from "./index.js";

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), "capa-ckpt-"));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const at = (path: string, seconds: number) => utimesSync(path, seconds, seconds);

const assignment = (checkpointDir: string | undefined): TaskAssignment => ({
  taskId: "j1-0",
  jobId: "j1",
  replica: 0,
  gpuIndices: [],
  template: { command: ["train"], env: {}, workingDir: "", killGraceSeconds: 0 },
  epoch: 3,
  pricePerGpuHour: 0,
  tenant: "t",
  assignedAtMs: 0,
  stop: false,
  stopReason: "",
  ...(checkpointDir !== undefined && { checkpoint: { dir: checkpointDir, everySeconds: 0 } }),
});

describe("newestCheckpoint", () => {
  it("is undefined for a missing or empty dir", () => {
    const d = tmp();
    expect(newestCheckpoint(join(d, "nope"))).toBeUndefined();
    expect(newestCheckpoint(d)).toBeUndefined();
  });

  it("ignores entries still in progress (dot-names) and picks the newest published one", () => {
    const d = tmp();
    writeFileSync(join(d, "step-10"), "aaaa");
    at(join(d, "step-10"), 1000);
    writeFileSync(join(d, "step-20"), "bbbbbbbb");
    at(join(d, "step-20"), 2000);
    writeFileSync(join(d, ".step-30.tmp"), "half-written");
    at(join(d, ".step-30.tmp"), 3000);
    const found = newestCheckpoint(d)!;
    expect(found).toMatchObject({ name: "step-20", sizeBytes: 8, createdAtMs: 2_000_000, path: join(d, "step-20") });
  });

  it("dates and sizes a directory checkpoint by its files, once renamed into place", () => {
    const d = tmp();
    const partial = join(d, ".ckpt-2");
    mkdirSync(join(partial, "shards"), { recursive: true });
    writeFileSync(join(partial, "model.bin"), "x".repeat(100));
    writeFileSync(join(partial, "shards", "0"), "y".repeat(50));
    expect(newestCheckpoint(d)).toBeUndefined();
    renameSync(partial, join(d, "ckpt-2"));
    expect(newestCheckpoint(d)).toMatchObject({ name: "ckpt-2", sizeBytes: 150 });
  });

  it("breaks a tie of times by name", () => {
    const d = tmp();
    for (const name of ["b", "a"]) {
      writeFileSync(join(d, name), name);
      at(join(d, name), 500);
    }
    expect(newestCheckpoint(d)!.name).toBe("b");
  });
});

describe("checkpoint dir and local resume copy", () => {
  it("resolves the dir relative to the task's dir (default checkpoints) or absolute; none without a policy", () => {
    expect(checkpointDirOf(assignment(undefined), "/w")).toBeUndefined();
    expect(checkpointDirOf(assignment(""), "/w")).toBe("/w/tasks/j1-0/checkpoints");
    expect(checkpointDirOf(assignment("ck"), "/w")).toBe("/w/tasks/j1-0/ck");
    expect(checkpointDirOf(assignment("/scratch/ck"), "/w")).toBe("/scratch/ck");
  });

  it("copies a checkpoint of this agent into the resume dir; a missing or unsafe name gives undefined", () => {
    const work = tmp();
    const a = assignment("");
    const dir = checkpointDirOf(a, work)!;
    mkdirSync(join(dir, "step-3"), { recursive: true });
    writeFileSync(join(dir, "step-3", "state"), "3");
    const copy = copyLocalCheckpoint(a, work, "step-3")!;
    expect(copy).toBe(join(work, "tasks", "j1-0", "resume", "step-3"));
    expect(readFileSync(join(copy, "state"), "utf8")).toBe("3");
    expect(copyLocalCheckpoint(a, work, "step-9")).toBeUndefined();
    expect(copyLocalCheckpoint(a, work, "../step-3")).toBeUndefined();
  });

  it("copies another rank's checkpoint out of that task's dir (a gang resumes from one); unsafe task ids refused", () => {
    const work = tmp();
    const rank0 = { ...assignment(""), taskId: "j1-0" };
    const rank2 = { ...assignment(""), taskId: "j1-2" };
    const dir = checkpointDirOf(rank0, work)!;
    mkdirSync(join(dir, "step-5"), { recursive: true });
    writeFileSync(join(dir, "step-5", "state"), "5");
    expect(copyLocalCheckpoint(rank2, work, "step-5")).toBeUndefined(); // not in rank 2's own dir
    const copy = copyLocalCheckpoint(rank2, work, "step-5", "j1-0")!;
    expect(copy).toBe(join(work, "tasks", "j1-2", "resume", "step-5"));
    expect(readFileSync(join(copy, "state"), "utf8")).toBe("5");
    expect(copyLocalCheckpoint(rank2, work, "step-5", "../j1-0")).toBeUndefined();
  });
});
