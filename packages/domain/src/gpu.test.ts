import { describe, expect, it } from "vitest";
import { GpuSpecError, normalizeGpuName, parseGpuSpec } from "./gpu.js";

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
