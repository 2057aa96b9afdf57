/**
 * GPU discovery: runs the real nvidia-smi (execFile, argv only, bounded by a timeout) or builds simulated GPUs
 * for machines without any. Parsing lives in nvidia-smi.ts so this file is only process handling.
 */
import { type ExecFileException, execFile } from "node:child_process";
import { type Gpu, parseGpuSpec } from "@capa/domain";
import {
  NvidiaSmiError,
  NvidiaSmiExitError,
  NvidiaSmiNotFoundError,
  NvidiaSmiParseError,
  NvidiaSmiTimeoutError,
} from "../errors.js";
import { NVIDIA_SMI_ARGS, parseNvidiaSmiCsv, smiRowToGpu } from "./nvidia-smi.js";

export interface NvidiaSmiOptions {
  /** Program to run; looked up on PATH (from `env`) when it has no slash. Default "nvidia-smi". */
  binary?: string;
  /** A wedged driver can make nvidia-smi hang for minutes; default 10 s. */
  timeoutMs?: number;
  /** Environment for the child (PATH decides which nvidia-smi runs); default process.env. */
  env?: NodeJS.ProcessEnv;
}

export const DEFAULT_NVIDIA_SMI_TIMEOUT_MS = 10_000;
const MAX_OUTPUT_BYTES = 4 * 1024 * 1024;

/** Runs nvidia-smi with the query flags and returns its stdout. */
export function queryNvidiaSmi(options: NvidiaSmiOptions = {}): Promise<string> {
  const binary = options.binary ?? "nvidia-smi";
  const timeoutMs = options.timeoutMs ?? DEFAULT_NVIDIA_SMI_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    let settled = false;
    const child = execFile(
      binary,
      NVIDIA_SMI_ARGS,
      { env: options.env ?? process.env, maxBuffer: MAX_OUTPUT_BYTES, encoding: "utf8" },
      (err, stdout, stderr) => {
        clearTimeout(timer);
        if (settled) return;
        settled = true;
        if (!err) return resolve(stdout);
        reject(toSmiError(binary, err, stderr));
      },
    );
    // Our own timer rather than execFile's `timeout`: execFile reports only once the output pipes close, and a
    // wrapper script's grandchild (or a D-state nvidia-smi) can hold them open long after the kill.
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      child.kill("SIGKILL");
      child.stdout?.destroy();
      child.stderr?.destroy();
      reject(new NvidiaSmiTimeoutError(timeoutMs));
    }, timeoutMs);
  });
}

function toSmiError(binary: string, err: ExecFileException, stderr: string): NvidiaSmiError {
  if (err.code === "ENOENT") return new NvidiaSmiNotFoundError(`${binary} not found on PATH`, { cause: err });
  if (typeof err.code === "number") return new NvidiaSmiExitError(err.code, stderr, { cause: err });
  if (err.signal) return new NvidiaSmiExitError(null, `killed by ${err.signal}. ${stderr}`, { cause: err });
  return new NvidiaSmiError(`${binary} failed: ${err.message}`, { cause: err });
}

/** Real GPUs via nvidia-smi, in index order. */
export async function discoverGpus(options: NvidiaSmiOptions = {}): Promise<Gpu[]> {
  const output = await queryNvidiaSmi(options);
  try {
    return parseNvidiaSmiCsv(output).map(smiRowToGpu);
  } catch (cause) {
    if (cause instanceof NvidiaSmiParseError) throw cause;
    throw new NvidiaSmiParseError(`cannot parse nvidia-smi output: ${(cause as Error).message}`, { cause });
  }
}

/** "4xH100-80GB,2xA100-40GB" → six GPUs with stable UUIDs `GPU-sim-<agentId>-<index>`. */
export function simulatedGpus(spec: string, agentId: string): Gpu[] {
  return parseGpuSpec(spec).map((info, index) => ({
    index,
    uuid: `GPU-sim-${agentId}-${index}`,
    model: info.model,
    vramMib: info.vramMib,
    health: "ok",
    migEnabled: false,
    utilizationPct: 0,
    memoryUsedMib: 0,
    temperatureC: 0,
    driverVersion: "simulated",
  }));
}

export interface GpuInventory {
  gpus: Gpu[];
  simulated: boolean;
  /** Where the GPUs came from; "none" = no nvidia-smi on this machine (a CPU-only agent). */
  source: "nvidia-smi" | "simulated" | "none";
}

/**
 * Simulated when a spec is given; otherwise nvidia-smi. A machine without nvidia-smi is a CPU-only agent (no GPUs),
 * but any other nvidia-smi failure is thrown: advertising zero GPUs on a GPU host would hide a broken driver.
 */
export async function discoverInventory(options: {
  simulateGpus?: string;
  agentId: string;
  nvidiaSmi?: NvidiaSmiOptions;
}): Promise<GpuInventory> {
  if (options.simulateGpus) {
    return { gpus: simulatedGpus(options.simulateGpus, options.agentId), simulated: true, source: "simulated" };
  }
  try {
    return { gpus: await discoverGpus(options.nvidiaSmi), simulated: false, source: "nvidia-smi" };
  } catch (err) {
    if (err instanceof NvidiaSmiNotFoundError) return { gpus: [], simulated: false, source: "none" };
    throw err;
  }
}
