import { jobStateToPb } from "@capa/bus";
import { Command } from "commander";
import { jsonOption, print, printJson, withScheduler } from "../context.js";
import { jobJson, renderJobsTable } from "../render.js";
import { parseInteger } from "../spec.js";
import { collectJobStates, type JobState } from "../states.js";

export function jobsCommand(): Command {
  return jsonOption(new Command("jobs").description("list the tenant's jobs, newest first"))
    .option(
      "--state <state>",
      "only jobs in this state (repeatable: pending, running, succeeded, ...)",
      collectJobStates,
      [],
    )
    .option("--limit <n>", "at most this many jobs", parseInteger)
    .action(async (flags: { state: JobState[]; limit?: number; json?: boolean }, self: Command) => {
      const states = flags.state;
      await withScheduler(self, async (client) => {
        const { jobs } = await client.listJobs({
          tenant: client.options.tenant,
          states: states.map(jobStateToPb),
          limit: flags.limit ?? 0,
          pageToken: "",
        });
        if (flags.json) printJson({ jobs: jobs.map(jobJson) });
        else print(renderJobsTable(jobs, Date.now()));
      });
    });
}
