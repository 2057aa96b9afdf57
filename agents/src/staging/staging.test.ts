import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { STAGED_SCHEMES, type TaskAssignment } from "@capa/domain";
import { afterEach, describe, expect, it } from "vitest";
import { defaultStagers, stageData } from "./index.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const assignment = (data: TaskAssignment["data"]): TaskAssignment => ({
  taskId: "j1-0",
  jobId: "j1",
  replica: 0,
  gpuIndices: [],
  template: { command: ["train"], env: {}, workingDir: "", killGraceSeconds: 0 },
  epoch: 1,
  pricePerGpuHour: 0,
  tenant: "t",
  assignedAtMs: 0,
  stop: false,
  stopReason: "",
  data,
});

describe("data staging", () => {
  it("the agent stages exactly the schemes the scheduler accepts at submit", () => {
    expect(defaultStagers().schemes()).toEqual([...STAGED_SCHEMES].sort());
  });

  it("stages host paths and file:// URIs in place, with env names and container paths", async () => {
    const d = mkdtempSync(join(tmpdir(), "capa-stage-"));
    dirs.push(d);
    writeFileSync(join(d, "vocab.txt"), "a b c");
    const staged = await stageData(
      assignment([
        { name: "train-set", source: d, target: "" },
        { name: "vocab", source: pathToFileURL(join(d, "vocab.txt")).href, target: "/inputs/vocab.txt" },
      ]),
      "/tmp/task",
      defaultStagers(),
    );
    expect(staged).toEqual([
      { name: "train-set", env: "CAPA_DATA_TRAIN_SET", hostPath: d, containerPath: "/data/train-set" },
      { name: "vocab", env: "CAPA_DATA_VOCAB", hostPath: join(d, "vocab.txt"), containerPath: "/inputs/vocab.txt" },
    ]);
  });

  it("a missing path or a scheme this agent lacks fails naming the mount", async () => {
    await expect(
      stageData(assignment([{ name: "x", source: "/no/such/dir", target: "" }]), "/t", defaultStagers()),
    ).rejects.toMatchObject({ mount: "x", message: "/no/such/dir: no such file or directory" });
    await expect(
      stageData(assignment([{ name: "y", source: "s3://b/k", target: "" }]), "/t", defaultStagers()),
    ).rejects.toMatchObject({ mount: "y", message: "no stager for scheme s3:// on this agent" });
  });
});
