import { Command } from "commander";
import { jsonOption, print, printJson, withScheduler } from "../context.js";
import { CliError } from "../errors.js";
import { jobJson, renderJobDetail } from "../render.js";

export function statusCommand(): Command {
  return jsonOption(
    new Command("status").description("show a job: state, placement (agent, region, GPUs, price) and exit codes"),
  )
    .argument("<job-id>")
    .action(async (jobId: string, flags: { json?: boolean }, self: Command) => {
      await withScheduler(self, async (client) => {
        const { job } = await client.getJob({ jobId });
        if (!job) throw new CliError(`the scheduler answered GetJob without a job for ${jobId}`);
        if (flags.json) printJson(jobJson(job));
        else print(renderJobDetail(job, Date.now()));
      });
    });
}
