import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { NvidiaSmiParseError } from "../errors.js";
import { NVIDIA_SMI_ARGS, parseNvidiaSmiCsv, type SmiGpuRow, smiRowToGpu } from "./nvidia-smi.js";

const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), "utf8");

describe("nvidia-smi query", () => {
  it("asks for exactly the fields the parser reads, without headers or units", () => {
    expect(NVIDIA_SMI_ARGS).toEqual([
      "--query-gpu=index,uuid,name,memory.total,memory.used,utilization.gpu,temperature.gpu,mig.mode.current,driver_version,pci.bus_id",
      "--format=csv,noheader,nounits",
    ]);
  });
});

describe("parseNvidiaSmiCsv on recorded output", () => {
  it("parses an 8x H100 SXM node field by field", () => {
    const rows = parseNvidiaSmiCsv(fixture("h100-sxm-8.csv"));
    expect(rows).toHaveLength(8);
    expect(rows.map((r) => r.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(rows[0]).toEqual<SmiGpuRow>({
      index: 0,
      uuid: "GPU-1d4c6e8f-2b7a-4c39-9e51-7f0a3b8d2c64",
      name: "NVIDIA H100 80GB HBM3",
      memoryTotalMib: 81559,
      memoryUsedMib: 0,
      utilizationPct: 0,
      temperatureC: 29,
      migMode: "disabled",
      driverVersion: "535.129.03",
      pciBusId: "00000000:18:00.0",
    });
    expect(rows[3]).toMatchObject({
      memoryUsedMib: 71244,
      utilizationPct: 97,
      temperatureC: 63,
      pciBusId: "00000000:5D:00.0",
    });
    expect(rows[7]?.uuid).toBe("GPU-f19c8b36-7e4a-4d20-b1f5-6c3e9a0d8b74");
  });

  it("normalises names and keeps telemetry in the domain view", () => {
    const gpus = parseNvidiaSmiCsv(fixture("h100-sxm-8.csv")).map(smiRowToGpu);
    expect(new Set(gpus.map((g) => g.model))).toEqual(new Set(["H100-80GB"]));
    expect(gpus[2]).toEqual({
      index: 2,
      uuid: "GPU-47b0c5d2-e8f1-4a63-b92c-5d8e0f1a7c39",
      model: "H100-80GB",
      vramMib: 81559,
      health: "ok",
      migEnabled: false,
      utilizationPct: 98,
      memoryUsedMib: 71244,
      temperatureC: 61,
      driverVersion: "535.129.03",
    });
  });

  it("reads MIG mode: enabled with [N/A] utilisation, and disabled", () => {
    const rows = parseNvidiaSmiCsv(fixture("a100-mig.csv"));
    expect(rows[0]).toEqual<SmiGpuRow>({
      index: 0,
      uuid: "GPU-5c2b8e1d-3f7a-4a96-8d0e-b4c1f9a27e63",
      name: "NVIDIA A100-SXM4-40GB",
      memoryTotalMib: 40960,
      memoryUsedMib: 37,
      utilizationPct: undefined,
      temperatureC: 33,
      migMode: "enabled",
      driverVersion: "525.85.12",
      pciBusId: "00000000:07:00.0",
    });
    expect(rows[1]?.migMode).toBe("disabled");
    const gpus = rows.map(smiRowToGpu);
    expect(gpus.map((g) => [g.model, g.migEnabled, g.utilizationPct, g.health])).toEqual([
      ["A100-40GB", true, 0, "ok"],
      ["A100-40GB", false, 0, "ok"],
    ]);
  });

  it("treats [N/A] MIG mode as not MIG-capable (T4)", () => {
    const [row] = parseNvidiaSmiCsv(fixture("t4-single.csv"));
    expect(row?.migMode).toBeUndefined();
    expect(row && smiRowToGpu(row)).toMatchObject({
      model: "T4-16GB",
      vramMib: 15360,
      migEnabled: false,
      health: "ok",
    });
  });

  it("maps [Not Supported] to unknown and a GPU reporting [Unknown Error] to failed", () => {
    const rows = parseNvidiaSmiCsv(fixture("h100-degraded.csv"));
    expect(rows[0]).toMatchObject({ memoryUsedMib: 0, utilizationPct: undefined, temperatureC: undefined });
    expect(rows[1]).toMatchObject({
      uuid: "GPU-a06c4f2e-7d8b-4913-b5e0-2c9f1a4d7e35",
      memoryTotalMib: undefined,
      memoryUsedMib: undefined,
      migMode: undefined,
      driverVersion: "550.54.15",
    });
    const gpus = rows.map(smiRowToGpu);
    expect(gpus.map((g) => [g.health, g.model, g.vramMib])).toEqual([
      ["ok", "H100-80GB", 81559],
      ["failed", "UNKNOWN", 0],
    ]);
  });
});

describe("parseNvidiaSmiCsv edge cases", () => {
  const line = "0, GPU-x, NVIDIA H100 80GB HBM3, 81559, 1, 2, 3, Disabled, 535.129.03, 00000000:18:00.0";

  it("accepts CRLF, blank lines and no trailing newline; empty output means no GPUs", () => {
    expect(parseNvidiaSmiCsv(`${line}\r\n\r\n`)).toHaveLength(1);
    expect(parseNvidiaSmiCsv(line)).toHaveLength(1);
    expect(parseNvidiaSmiCsv("")).toEqual([]);
    expect(parseNvidiaSmiCsv("\n  \n")).toEqual([]);
  });

  it("keeps a comma inside the GPU name", () => {
    const [row] = parseNvidiaSmiCsv("0, GPU-x, Odd, Name, 81559, 1, 2, 3, Disabled, 535.129.03, 00000000:18:00.0");
    expect(row?.name).toBe("Odd, Name");
    expect(row?.memoryTotalMib).toBe(81559);
  });

  it("sorts by index whatever the output order", () => {
    const other = line.replace(/^0,/, "1,");
    expect(parseNvidiaSmiCsv(`${other}\n${line}`).map((r) => r.index)).toEqual([0, 1]);
  });

  it("names the bad line: too few fields, non-numeric memory, duplicate index, odd MIG mode", () => {
    expect(() => parseNvidiaSmiCsv(`${line}\n0, GPU-y, short`)).toThrow(/line 2: expected 10 fields, got 3/);
    expect(() => parseNvidiaSmiCsv(line.replace("81559", "lots"))).toThrow(/line 1: memory.total is not a number/);
    expect(() => parseNvidiaSmiCsv(`${line}\n${line}`)).toThrow(/GPU index 0 appears twice/);
    expect(() => parseNvidiaSmiCsv(line.replace("Disabled", "Pending"))).toThrow(/mig.mode.current/);
    expect(() => parseNvidiaSmiCsv(line.replace(/^0/, "x"))).toThrow(NvidiaSmiParseError);
  });

  it("tolerates units when nounits was forgotten", () => {
    const [row] = parseNvidiaSmiCsv(
      "0, GPU-x, NVIDIA H100 80GB HBM3, 81559 MiB, 1 MiB, 2 %, 3, Disabled, 535.129.03, 00000000:18:00.0",
    );
    expect(row).toMatchObject({ memoryTotalMib: 81559, memoryUsedMib: 1, utilizationPct: 2 });
  });
});
