import type { JobSpec } from "@capa/domain";
import { describe, expect, it } from "vitest";
import { PlacementEngine } from "../engine.js";
import { REASON, type RejectionReason } from "../reasons.js";
import { type AgentOptions, agent, allocation, NOW, request, stateOf } from "../test-fixtures.js";
import { FILTERS } from "./registry.js";

const engine = new PlacementEngine();

interface Case {
  name: string;
  agent: AgentOptions;
  spec: Partial<JobSpec>;
  /** undefined = the one agent passes and the job is placed. */
  rejectedFor?: RejectionReason;
  busy?: number[];
}

/** One agent, one job: either placed, or rejected for exactly the expected named reason. */
const CASES: Case[] = [
  { name: "model accepted", agent: { gpus: "2xH100-80GB" }, spec: { gpuModels: ["H100-80GB", "A100-80GB"] } },
  {
    name: "model not accepted",
    agent: { gpus: "2xH100-80GB" },
    spec: { gpuModels: ["A100-80GB"] },
    rejectedFor: REASON.gpuModelNotAccepted,
  },
  { name: "region allowed", agent: { region: "eu-west" }, spec: { regions: ["eu-west"] } },
  {
    name: "region not allowed",
    agent: { region: "us-east" },
    spec: { regions: ["eu-west"] },
    rejectedFor: REASON.regionNotAllowed,
  },
  {
    name: "region excluded",
    agent: { region: "us-east" },
    spec: { excludeRegions: ["us-east"] },
    rejectedFor: REASON.regionExcluded,
  },
  { name: "residency matches", agent: { region: "eu-west" }, spec: { residency: "eu" } },
  {
    name: "residency differs",
    agent: { region: "us-east" },
    spec: { residency: "eu" },
    rejectedFor: REASON.residencyMismatch,
  },
  { name: "price at the cap", agent: { prices: { "H100-80GB": ["2.00"] } }, spec: { maxPricePerGpuHour: 2_000_000 } },
  {
    name: "price over the cap",
    agent: { prices: { "H100-80GB": ["2.00"] } },
    spec: { maxPricePerGpuHour: 1_999_999 },
    rejectedFor: REASON.overMaxPrice,
  },
  {
    name: "interruptible job under the cap at the interruptible price",
    agent: { prices: { "H100-80GB": ["2.00", "0.90"] } },
    spec: { maxPricePerGpuHour: 1_000_000, interruptible: true },
  },
  {
    name: "non-interruptible job pays on-demand",
    agent: { prices: { "H100-80GB": ["2.00", "0.90"] } },
    spec: { maxPricePerGpuHour: 1_000_000 },
    rejectedFor: REASON.overMaxPrice,
  },
  { name: "enough VRAM", agent: { gpus: "1xA100-80GB" }, spec: { minVramMib: 80 * 1024 } },
  {
    name: "too little VRAM",
    agent: { gpus: "1xA100-40GB" },
    spec: { minVramMib: 80 * 1024 },
    rejectedFor: REASON.insufficientVram,
  },
  { name: "fresh advert", agent: { lastSeenMs: NOW - 30_000 }, spec: {} },
  { name: "stale advert", agent: { lastSeenMs: NOW - 30_001 }, spec: {}, rejectedFor: REASON.staleAdvert },
  { name: "draining agent", agent: { draining: true }, spec: {}, rejectedFor: REASON.agentDraining },
  { name: "process task on an agent without drivers listed", agent: {}, spec: {} },
  {
    name: "image on a process-only agent",
    agent: { drivers: ["process"] },
    spec: { template: { command: ["x"], env: {}, workingDir: "", killGraceSeconds: 1, image: "busybox" } },
    rejectedFor: REASON.driverMissing,
  },
  {
    name: "image on an agent without drivers listed (an older agent)",
    agent: {},
    spec: { template: { command: ["x"], env: {}, workingDir: "", killGraceSeconds: 1, image: "busybox" } },
    rejectedFor: REASON.driverMissing,
  },
  {
    name: "image on an agent with the container driver",
    agent: { drivers: ["process", "container"] },
    spec: { template: { command: ["x"], env: {}, workingDir: "", killGraceSeconds: 1, image: "busybox" } },
  },
  { name: "labels match", agent: { labels: { disk: "nvme", tier: "a" } }, spec: { nodeSelector: { disk: "nvme" } } },
  {
    name: "label missing",
    agent: { labels: { tier: "a" } },
    spec: { nodeSelector: { disk: "nvme" } },
    rejectedFor: REASON.labelMismatch,
  },
  { name: "enough free GPUs", agent: { gpus: "4xH100-80GB" }, spec: { gpusPerReplica: 2 }, busy: [0, 1] },
  {
    name: "too few free GPUs",
    agent: { gpus: "4xH100-80GB" },
    spec: { gpusPerReplica: 3 },
    busy: [0, 1],
    rejectedFor: REASON.insufficientGpus,
  },
  {
    name: "unhealthy GPUs do not count",
    agent: { gpus: "2xH100-80GB", unhealthy: [1] },
    spec: { gpusPerReplica: 2 },
    rejectedFor: REASON.insufficientGpus,
  },
  {
    name: "gang fits one fabric domain",
    agent: { gpus: "8xH100-80GB", fabricDomain: "nvl-1" },
    spec: { kind: "training", replicas: 2, gpusPerReplica: 4 },
  },
  {
    name: "gang larger than the fabric domain",
    agent: { gpus: "8xH100-80GB", fabricDomain: "nvl-1" },
    spec: { kind: "training", replicas: 2, gpusPerReplica: 4 },
    busy: [0],
    rejectedFor: REASON.gangDoesNotFitRegion,
  },
];

describe("filters (one agent, one job)", () => {
  it.each(CASES.map((c) => [c.name, c] as const))("%s", (_name, c) => {
    const busy = c.busy ? [allocation("other-0", "a1", c.busy)] : [];
    const state = stateOf([agent("a1", c.agent)], busy);
    const plan = engine.place(state, request("job", c.spec), { nowMs: NOW, seed: 7 });
    if (c.rejectedFor === undefined) {
      expect(plan.outcome).toBe("placed");
      expect(plan.explanation.rejections).toEqual({});
    } else {
      expect(plan.outcome).not.toBe("placed");
      expect(plan.placements).toEqual([]);
      expect(plan.explanation.rejections).toEqual({ [c.rejectedFor]: 1 });
    }
  });

  it("every filter rejects with a distinct kebab-case reason", () => {
    const reasons = FILTERS.map((f) => f.reason);
    expect(new Set(reasons).size).toBe(reasons.length);
    for (const r of reasons) expect(r).toMatch(/^[a-z]+(-[a-z]+)*$/);
  });

  it("a gang that no single fabric domain can hold is rejected for the fabric, unless spanning is allowed", () => {
    const agents = [
      agent("a1", { fabricDomain: "nvl-1" }),
      agent("a2", { fabricDomain: "nvl-2" }),
      agent("a3", { fabricDomain: "nvl-2", gpus: "4xH100-80GB" }),
    ];
    const spec = { kind: "training" as const, replicas: 2, gpusPerReplica: 8 };
    const state = stateOf(agents);
    const strict = engine.place(state, request("g", spec), { nowMs: NOW, seed: 1 });
    expect(strict.outcome).toBe("unplaceable");
    expect(strict.explanation.rejections[REASON.fabricDomainTooSmall]).toBe(3);
    const spanning = engine.place(state, request("g", { ...spec, allowFabricSpanning: true }), { nowMs: NOW, seed: 1 });
    expect(spanning.outcome).toBe("placed");
    expect(spanning.placements.map((p) => p.agentId).sort()).toEqual(["a1", "a2"]);
  });
});
