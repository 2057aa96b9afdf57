import { describe, expect, it } from "vitest";
import { logMsgId, statusMsgId, usageMsgId, usageReport } from "./reporter.js";

describe("message ids", () => {
  it("derive from task, epoch and what, so retries and re-publishes dedupe", () => {
    const t = { taskId: "j1-0", jobId: "j1", epoch: 3 };
    expect(statusMsgId(t, "running")).toBe("j1-0.3.running");
    // Each checkpoint is its own running report (not deduplicated away as a repeat of the first).
    expect(statusMsgId(t, "running", 1_700_000_000_123)).toBe("j1-0.3.running.ckpt.1700000000123");
    expect(statusMsgId(t, "succeeded", 1_700_000_000_123)).toBe("j1-0.3.succeeded");
    expect(usageMsgId(t, 2)).toBe("j1-0.3.usage.2");
    expect(logMsgId(t, 17)).toBe("j1-0.3.log.17");
  });
});

describe("usageReport", () => {
  const task = { taskId: "t", jobId: "j", epoch: 1, agentId: "a", gpus: 4, startedAtMs: 10_000 };
  it("counts gpus x elapsed milliseconds, cumulative from the start", () => {
    expect(usageReport(task, 12_500, 1, false)).toEqual({
      taskId: "t",
      jobId: "j",
      agentId: "a",
      epoch: 1,
      startedAtMs: 10_000,
      untilMs: 12_500,
      gpus: 4,
      gpuMilliseconds: 10_000,
      final: false,
      sequence: 1,
    });
  });
  it("is zero for CPU-only tasks and never negative", () => {
    expect(usageReport({ ...task, gpus: 0 }, 99_000, 1, true).gpuMilliseconds).toBe(0);
    expect(usageReport(task, 9_000, 1, true).gpuMilliseconds).toBe(0);
  });
});
