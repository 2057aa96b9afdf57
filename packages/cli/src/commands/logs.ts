import type * as api from "@capa/api";
import { Command } from "commander";
import { jsonOption, printJson, printJsonLine, withScheduler } from "../context.js";
import { prefixLines } from "../format.js";
import { logLineJson, streamName } from "../render.js";

interface LogsFlags {
  follow?: boolean;
  task?: string;
  json?: boolean;
}

export function logsCommand(): Command {
  return jsonOption(
    new Command("logs").description("print a job's output (stdout to stdout, stderr and capa's own lines to stderr)"),
  )
    .argument("<job-id>")
    .option("-f, --follow", "keep streaming until the job is final")
    .option("--task <task-id>", "only this replica's task")
    .action(async (jobId: string, flags: LogsFlags, self: Command) => {
      await withScheduler(self, async (client) => {
        // With several replicas the lines interleave, so each gets its task id unless one task was chosen.
        const { job } = await client.getJob({ jobId });
        const prefixed = !flags.task && (job?.tasks.length ?? 0) > 1;
        const stream = client.streamLogs({ jobId, follow: flags.follow ?? false, taskId: flags.task ?? "" });
        if (flags.json && !flags.follow) {
          const lines = [];
          for await (const line of stream) lines.push(logLineJson(line));
          printJson({ jobId, lines });
          return;
        }
        for await (const line of stream) {
          if (flags.json) printJsonLine(logLineJson(line));
          else writeLogLine(line, prefixed);
        }
      });
    });
}

/** Lines capa wrote itself, each starting with "[capa] " exactly once. */
export function markSystemLines(text: string): string {
  return prefixLines(text, "")
    .split("\n")
    .map((l) => (l === "" || l.startsWith("[capa] ") ? l : `[capa] ${l}`))
    .join("\n");
}

function writeLogLine(line: api.LogLine, prefixed: boolean): void {
  const kind = streamName(line.stream);
  let text = Buffer.from(line.data).toString("utf8");
  // The agent writes its own lines already marked ("[capa] cannot start ..."): mark only those that are not.
  if (kind === "system") text = markSystemLines(text);
  if (prefixed) text = prefixLines(text, `[${line.taskId}] `);
  (kind === "stdout" ? process.stdout : process.stderr).write(text);
}
