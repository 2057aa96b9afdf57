/**
 * Host facts for the advert (CPU cores, memory, hostname), read once at start from node:os. (It was
 * systeminformation, whose answers for these three are node:os's on Linux and which cost the agent ~4 MB of
 * resident memory for its whole life and a few child processes at start.)
 */
import { availableParallelism, hostname as osHostname, totalmem } from "node:os";
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
    return {
      hostname: osHostname(),
      cpuCores: availableParallelism(),
      memoryMib: Math.floor(totalmem() / BYTES_PER_MIB),
    };
  } catch (cause) {
    throw new HostInfoError(`cannot read host facts: ${(cause as Error).message}`, { cause });
  }
}
