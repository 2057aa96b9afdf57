import { randomUUID } from "node:crypto";
import type * as api from "@capa/api";
import { jobSpecToPb, jobStateFromPb } from "@capa/bus";
import { isFinalJobState } from "@capa/domain";
import { Command } from "commander";
import { jsonOption, print, printJson, printJsonLine, withScheduler } from "../context.js";
import { CliError } from "../errors.js";
import type { SchedulerClient } from "../grpc.js";
import { resolveSpec } from "../job-input.js";
import { jobEventJson, jobJson, renderJobEvent } from "../render.js";
import { addSpecOptions, type SpecFlags } from "../spec.js";

interface SubmitFlags extends SpecFlags {
  requestId?: string;
  watch?: boolean;
  json?: boolean;
}

export function submitCommand(): Command {
  const cmd = new Command("submit")
    .description("submit a job: each replica runs the command given after --")
    .argument(
      "[command...]",
      "program and arguments, after -- (e.g. -- python train.py --lr 3e-4); or give -f job.yaml",
    );
  addSpecOptions(cmd)
    .option("--request-id <id>", "idempotency key: a retry with the same key returns the same job (default: random)")
    .option("--watch", "follow state changes until the job is final; exit 0 only if it succeeded");
  jsonOption(cmd).action(async (command: string[], flags: SubmitFlags, self: Command) => {
    const spec = resolveSpec(self, flags, command, { verb: "submit" });
    await withScheduler(self, async (client) => {
      const { job, deduplicated } = await client.submitJob({
        requestId: flags.requestId ?? randomUUID(),
        tenant: client.options.tenant,
        spec: jobSpecToPb(spec),
      });
      if (!job) throw new CliError("the scheduler answered SubmitJob without a job");
      if (flags.json && !flags.watch) printJson({ job: jobJson(job), deduplicated });
      else if (flags.json) printJsonLine({ submitted: job.id, deduplicated });
      else
        print(
          `submitted job ${job.id}${deduplicated ? " (deduplicated: an earlier submit with this request id)" : ""}`,
        );
      if (flags.watch) await watchUntilFinal(client, job, flags.json ?? false);
    });
  });
  return cmd;
}

/** Streams the job's events; the exit status says whether it succeeded. */
async function watchUntilFinal(client: SchedulerClient, job: api.Job, json: boolean): Promise<void> {
  let last = jobStateFromPb(job.state) ?? "pending";
  let printed = "";
  for await (const event of client.watchJob({ jobId: job.id })) {
    last = jobStateFromPb(event.state) ?? last;
    // Events also come for task-level changes (assigned → starting, ...) under the same job state: people see
    // each job state once; --json streams every event.
    if (json) printJsonLine(jobEventJson(event));
    else if (last !== printed) print(renderJobEvent(event));
    printed = last;
    if (isFinalJobState(last)) break;
  }
  if (last !== "succeeded") throw new CliError(`job ${job.id} ended ${last}`);
}
