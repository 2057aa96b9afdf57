/**
 * What every client command shares: the connection options from global flags and the environment, and the
 * two ways of answering (a table for people, one JSON document for scripts).
 */
import { type Command, Option } from "commander";
import { clientOptions, SchedulerClient } from "./grpc.js";
import { OUTPUT_FORMATS, renderDocument, renderStreamItem } from "./output.js";

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

/** The answer as one document, in the format of `-o` (json by default; yaml; name: one name per line). */
export function printJson(value: unknown): void {
  const text = renderDocument(value);
  if (text !== "") process.stdout.write(`${text}\n`);
}

/** One item of a stream (`logs -f --json`, `submit --watch --json`): a compact JSON line, a YAML document, a name. */
export function printJsonLine(value: unknown): void {
  const text = renderStreamItem(value);
  if (text !== "") process.stdout.write(`${text}\n`);
}

export function print(text: string): void {
  process.stdout.write(`${text}\n`);
}

/** Commands that print answers: `-o` applies to them (program.ts's preAction hook reads it). */
export const FORMAT_COMMANDS = new WeakSet<Command>();

/** Adds `-o json|yaml|wide|name` and `--json` (= `-o json`) to a command. */
export function jsonOption(cmd: Command): Command {
  FORMAT_COMMANDS.add(cmd);
  return cmd
    .addOption(
      new Option(
        "-o, --output <format>",
        "json | yaml (documents for scripts), wide (a table with more columns), name",
      ).choices(OUTPUT_FORMATS),
    )
    .option("--json", "print one JSON document for scripts instead of a table (= -o json)");
}
