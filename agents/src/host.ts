/** Host facts for the advert (CPU cores, memory, hostname), read once at start via systeminformation. */
import { availableParallelism, hostname as osHostname, totalmem } from "node:os";
import si from "systeminformation";
import { HostInfoError } from "./errors.js";

export interface HostFacts {
  hostname: string;
  /** Logical cores: what a task can be scheduled on. */
  cpuCores: number;
  memoryMib: number;
}

const BYTES_PER_MIB = 1024 * 1024;

export async function readHostFacts(): Promise<HostFacts> {
  try {
    const [cpu, mem, os] = await Promise.all([si.cpu(), si.mem(), si.osInfo()]);
    // systeminformation answers zeros/empty strings rather than throwing on exotic platforms: fall back to node:os.
    return {
      hostname: os.hostname || osHostname(),
      cpuCores: cpu.cores || availableParallelism(),
      memoryMib: Math.floor((mem.total || totalmem()) / BYTES_PER_MIB),
    };
  } catch (cause) {
    throw new HostInfoError(`cannot read host facts: ${(cause as Error).message}`, { cause });
  }
}
