import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeFakeNvidiaSmi as writeFake } from "@capa/testkit";
import { afterEach, describe, expect, it } from "vitest";
import { NvidiaSmiExitError, NvidiaSmiNotFoundError, NvidiaSmiParseError, NvidiaSmiTimeoutError } from "../errors.js";
import { discoverGpus, discoverInventory, queryNvidiaSmi, simulatedGpus } from "./discover.js";

const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), "utf8");
/** PATH with the fake first, so the real lookup-by-name path of execFile is what runs. */
const envWith = (dir: string) => ({ ...process.env, PATH: `${dir}:${process.env.PATH ?? ""}` });

const tempDirs: string[] = [];
afterEach(() => {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
function writeFakeNvidiaSmi(...args: Parameters<typeof writeFake>): ReturnType<typeof writeFake> {
  const fake = writeFake(...args);
  tempDirs.push(fake.dir);
  return fake;
}

describe("discovery through a fake nvidia-smi on PATH", () => {
  it("runs nvidia-smi by name and parses its output", async () => {
    const fake = writeFakeNvidiaSmi(fixture("h100-sxm-8.csv"));
    const gpus = await discoverGpus({ env: envWith(fake.dir) });
    expect(gpus).toHaveLength(8);
    expect(gpus.every((g) => g.model === "H100-80GB" && g.health === "ok")).toBe(true);
    expect(gpus[7]?.uuid).toBe("GPU-f19c8b36-7e4a-4d20-b1f5-6c3e9a0d8b74");
  });

  it("reports real GPUs as not simulated", async () => {
    const fake = writeFakeNvidiaSmi(fixture("a100-mig.csv"));
    const inv = await discoverInventory({ agentId: "a1", nvidiaSmi: { env: envWith(fake.dir) } });
    expect(inv).toMatchObject({ simulated: false, source: "nvidia-smi" });
    expect(inv.gpus.map((g) => g.migEnabled)).toEqual([true, false]);
  });

  it("fails with NvidiaSmiExitError carrying the exit code on a non-zero exit", async () => {
    const fake = writeFakeNvidiaSmi("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n", {
      exitCode: 9,
    });
    const err = await discoverGpus({ env: envWith(fake.dir) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NvidiaSmiExitError);
    expect((err as NvidiaSmiExitError).exitCode).toBe(9);
    expect((err as Error).cause).toBeInstanceOf(Error);
    // A broken driver on a GPU host must not be advertised as a CPU-only machine.
    await expect(discoverInventory({ agentId: "a1", nvidiaSmi: { env: envWith(fake.dir) } })).rejects.toBeInstanceOf(
      NvidiaSmiExitError,
    );
  });

  it("times out, kills nvidia-smi and says how long it waited", async () => {
    const fake = writeFakeNvidiaSmi(fixture("t4-single.csv"), { sleepSeconds: 5 });
    const err = await queryNvidiaSmi({ env: envWith(fake.dir), timeoutMs: 300 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NvidiaSmiTimeoutError);
    expect((err as NvidiaSmiTimeoutError).timeoutMs).toBe(300);
  });

  it("rejects garbage output with a parse error", async () => {
    const fake = writeFakeNvidiaSmi("No devices were found, sorry\n");
    await expect(discoverGpus({ env: envWith(fake.dir) })).rejects.toBeInstanceOf(NvidiaSmiParseError);
  });

  it("treats a missing nvidia-smi as a CPU-only machine", async () => {
    const empty = mkdtempSync(join(tmpdir(), "capa-no-smi-"));
    tempDirs.push(empty);
    const env = { ...process.env, PATH: empty };
    await expect(queryNvidiaSmi({ env })).rejects.toBeInstanceOf(NvidiaSmiNotFoundError);
    expect(await discoverInventory({ agentId: "a1", nvidiaSmi: { env } })).toEqual({
      gpus: [],
      simulated: false,
      source: "none",
    });
  });
});

describe("simulated GPUs", () => {
  it("expands a spec with stable per-agent UUIDs", () => {
    const gpus = simulatedGpus("4xH100-80GB,2xA100-40GB", "box-1");
    expect(gpus.map((g) => [g.index, g.uuid, g.model, g.vramMib])).toEqual([
      [0, "GPU-sim-box-1-0", "H100-80GB", 81920],
      [1, "GPU-sim-box-1-1", "H100-80GB", 81920],
      [2, "GPU-sim-box-1-2", "H100-80GB", 81920],
      [3, "GPU-sim-box-1-3", "H100-80GB", 81920],
      [4, "GPU-sim-box-1-4", "A100-40GB", 40960],
      [5, "GPU-sim-box-1-5", "A100-40GB", 40960],
    ]);
    expect(simulatedGpus("4xH100-80GB,2xA100-40GB", "box-1")).toEqual(gpus);
  });

  it("wins over nvidia-smi when a spec is given", async () => {
    const inv = await discoverInventory({ agentId: "a", simulateGpus: "2xL4", nvidiaSmi: { binary: "/nonexistent" } });
    expect(inv).toMatchObject({ simulated: true, source: "simulated" });
    expect(inv.gpus.map((g) => g.model)).toEqual(["L4-24GB", "L4-24GB"]);
  });
});
