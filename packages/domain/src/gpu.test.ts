import { describe, expect, it } from "vitest";
import { GpuSpecError, normalizeGpuName, parseGpuModelQuery, parseGpuSpec, resolveGpuModels } from "./gpu.js";

describe("normalizeGpuName", () => {
  it.each([
    ["NVIDIA H100 80GB HBM3", 81559, "H100-80GB"],
    ["NVIDIA A100-SXM4-40GB", 40960, "A100-40GB"],
    ["NVIDIA A100-SXM4-80GB", 81920, "A100-80GB"],
    ["NVIDIA A100 80GB PCIe", 81920, "A100-80GB"],
    ["Tesla T4", 15360, "T4-16GB"],
    ["NVIDIA GeForce RTX 4090", 24564, "RTX4090-24GB"],
    ["NVIDIA L4", 23034, "L4-24GB"],
    ["NVIDIA H200", 143771, "H200-141GB"],
    ["NVIDIA A10G", 23028, "A10G-24GB"],
    ["NVIDIA L40S", 46068, "L40S-48GB"],
    ["NVIDIA RTX A6000", 49140, "A6000-48GB"],
    ["NVIDIA RTX 6000 Ada Generation", 49140, "RTX6000ADA-48GB"],
  ])("%s (%d MiB) → %s", (name, mib, model) => {
    expect(normalizeGpuName(name, mib)).toBe(model);
  });
});

describe("parseGpuSpec", () => {
  it("expands counts and keeps order", () => {
    const gpus = parseGpuSpec("2xH100-80GB, 1xA100-40GB");
    expect(gpus.map((g) => g.model)).toEqual(["H100-80GB", "H100-80GB", "A100-40GB"]);
    expect(gpus[2]?.vramMib).toBe(40 * 1024);
  });

  it("uses the known memory size when the spec omits it", () => {
    expect(parseGpuSpec("1xL4")[0]?.model).toBe("L4-24GB");
  });

  it.each(["", "H100", "0xH100", "4xFOO", "4 of H100"])("rejects %j", (spec) => {
    expect(() => parseGpuSpec(spec)).toThrow(GpuSpecError);
  });
});

describe("parseGpuModelQuery / resolveGpuModels (one normalisation for submit, quote and offers)", () => {
  const fleet = ["H100-80GB", "A100-80GB", "MI300X-192GB"];
  it.each([
    ["h100", { ok: true, family: "H100" }],
    ["H100-80GB", { ok: true, family: "H100", model: "H100-80GB" }],
    ["h100-80gb", { ok: true, family: "H100", model: "H100-80GB" }],
    [" H100 80GB ", { ok: true, family: "H100", model: "H100-80GB" }],
    ["NVIDIA H100 80GB HBM3", { ok: true, family: "H100", model: "H100-80GB" }],
    ["a10g", { ok: true, family: "A10G" }],
    ["A10G-24GB", { ok: true, family: "A10G", model: "A10G-24GB" }],
    ["mi300x-192gb", { ok: true, family: "MI300X", model: "MI300X-192GB" }],
    ["L40S", { ok: true, family: "L40S" }],
  ])("%s", (input, expected) => {
    expect(parseGpuModelQuery(input, fleet)).toEqual(expected);
  });

  it("refuses an unknown family, naming the known models", () => {
    const q = parseGpuModelQuery("h1000", fleet);
    expect(q.ok).toBe(false);
    if (!q.ok) {
      expect(q.message).toContain('unknown GPU model "h1000"');
      expect(q.message).toContain("H100-80GB");
      expect(q.message).toContain("MI300X-192GB");
    }
  });

  it("expands a family alone to every known size of it and names bad entries by index", () => {
    expect(resolveGpuModels(["a100", "h100-80gb"], fleet, "spec.gpu_models")).toEqual({
      models: ["A100-40GB", "A100-80GB", "H100-80GB"],
      violations: [],
    });
    const bad = resolveGpuModels(["h100", "nope"], fleet, "spec.gpu_models");
    expect(bad.violations.map((v) => v.field)).toEqual(["spec.gpu_models[1]"]);
  });
});
