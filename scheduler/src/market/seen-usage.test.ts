import type { UsageReport } from "@capa/domain";
import { describe, expect, it } from "vitest";
import { SeenUsage } from "./seen-usage.js";

function report(sequence: number, over: Partial<UsageReport> = {}): UsageReport {
  return {
    taskId: "j1-0",
    jobId: "j1",
    agentId: "a1",
    epoch: 3,
    startedAtMs: 1000,
    untilMs: 1000 + sequence * 100,
    gpus: 1,
    gpuMilliseconds: sequence * 100,
    final: false,
    sequence,
    ...over,
  };
}

describe("SeenUsage", () => {
  it("answers for a run only once its final report and every report before it were seen", () => {
    const seen = new SeenUsage();
    seen.add("j1-0", "a1", report(1));
    seen.add("j1-0", "a1", report(3, { final: true }));
    expect(seen.complete("j1-0", "a1", 3)).toBeUndefined(); // sequence 2 still on its way: read the stream
    seen.add("j1-0", "a1", report(2));
    seen.add("j1-0", "a1", report(1, { epoch: 2, final: true })); // another run on the subject: left out
    expect(seen.complete("j1-0", "a1", 3)?.map((r) => r.sequence)).toEqual([1, 3, 2]);
    expect(seen.complete("j1-0", "a1", 4)).toBeUndefined();
    expect(seen.complete("j1-0", "a2", 3)).toBeUndefined();
    seen.forget("j1-0", "a1");
    expect(seen.complete("j1-0", "a1", 3)).toBeUndefined();
  });

  it("keeps nothing that is not the subject's own, and gives up on a run longer than it keeps", () => {
    const seen = new SeenUsage(10, 2);
    seen.add("j1-0", "a2", report(1, { final: true })); // the payload names a1, the subject a2
    expect(seen.complete("j1-0", "a2", 3)).toBeUndefined();
    seen.add("j1-0", "a1", report(1));
    seen.add("j1-0", "a1", report(2));
    seen.add("j1-0", "a1", report(3, { final: true }));
    expect(seen.complete("j1-0", "a1", 3)).toBeUndefined();
  });
});
