/**
 * What every client command shares: the connection options from global flags and the environment, and the
 * two ways of answering (a table for people, one JSON document for scripts).
 */
import type { Command } from "commander";
import { clientOptions, SchedulerClient } from "./grpc.js";

export interface GlobalFlags {
  addr?: string;
  tenant?: string;
}

/** Runs `fn` with a client for the scheduler named by --addr / CAPA_GRPC_ADDR, and closes it afterwards. */
export async function withScheduler<T>(cmd: Command, fn: (client: SchedulerClient) => Promise<T>): Promise<T> {
  const client = new SchedulerClient(clientOptions(cmd.optsWithGlobals<GlobalFlags>()));
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, jsonReplacer, 2)}\n`);
}

/** One compact JSON object per line, for streams (`logs -f --json`, `submit --watch --json`). */
export function printJsonLine(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, jsonReplacer)}\n`);
}

function jsonReplacer(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? Number(value) : value;
}

export function print(text: string): void {
  process.stdout.write(`${text}\n`);
}

/** Adds `--json` to a command. */
export function jsonOption(cmd: Command): Command {
  return cmd.option("--json", "print one JSON document for scripts instead of a table");
}
