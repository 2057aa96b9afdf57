import { type Checkpoint, defaultJobSpec, type Job, newTask } from "@capa/domain";
import { describe, expect, it } from "vitest";
import { renderProvenance } from "./render-provenance.js";

const ckpt = (over: Partial<Checkpoint>): Checkpoint => ({
  name: "step-30",
  sizeBytes: 3 * 1024 * 1024,
  createdAtMs: Date.UTC(2026, 0, 2, 3, 4, 5),
  taskId: "j1-0",
  epoch: 3,
  agentId: "agent-a",
  attempt: 1,
  copy: "stored",
  copyNote: "",
  object: "j1-0/3/step-30",
  ...over,
});

describe("capa get: provenance", () => {
  it("shows image with digest, data URIs, the checkpoint policy, each task's checkpoint and the lineage", () => {
    const job: Job = {
      id: "j1",
      tenant: "acme",
      requestId: "",
      spec: defaultJobSpec({
        template: { command: ["train"], env: {}, workingDir: "", killGraceSeconds: 10, image: "localhost/t:1" },
        checkpoint: { dir: "", everySeconds: 600 },
        data: [{ name: "train", source: "file:///datasets/train", target: "/data/train" }],
      }),
      state: "running",
      reason: "",
      tasks: [{ ...newTask("j1", 0), imageDigest: "sha256:abc", checkpoint: ckpt({ name: "step-60", attempt: 2 }) }],
      createdAtMs: 1,
      updatedAtMs: 1,
      finishedAtMs: 0,
      cancelRequested: false,
      spent: 0,
      reserved: 0,
      lineage: [
        { taskId: "j1-0", epoch: 5, agentId: "agent-b", attempt: 2, resumedFrom: ckpt({}), atMs: 9 },
        // A training gang's added worker resumed from rank 0's checkpoint.
        { taskId: "j1-2", epoch: 5, agentId: "agent-c", attempt: 2, resumedFrom: ckpt({}), atMs: 9 },
      ],
    };
    const text = renderProvenance(job);
    expect(text).toContain("localhost/t:1 (sha256:abc)");
    expect(text).toContain("file:///datasets/train -> /data/train");
    expect(text).toMatch(/checkpoints:\s+checkpoints, every 10m/);
    expect(text).toContain("step-60 (3 MiB, attempt 2, agent-a, 2026-01-02T03:04:05.000Z; stored)");
    expect(text).toMatch(/OF TASK/);
    expect(text).toMatch(/j1-0\s+2\s+5\s+agent-b\s+step-30\s+j1-0\s+1\s+3\s+agent-a/);
    expect(text).toMatch(/j1-2\s+2\s+5\s+agent-c\s+step-30\s+j1-0\s+1\s+3\s+agent-a/);
  });

  it("says nothing for a job without any of it", () => {
    const job = { tasks: [], spec: defaultJobSpec({}) } as unknown as Job;
    expect(renderProvenance(job)).toBe("");
  });
});
