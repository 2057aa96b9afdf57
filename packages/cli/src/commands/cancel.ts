import { Command } from "commander";
import { jsonOption, print, printJson, withScheduler } from "../context.js";
import { CliError } from "../errors.js";
import { jobJson } from "../render.js";

export function cancelCommand(): Command {
  return jsonOption(new Command("cancel").description("cancel a job: its processes get SIGTERM, then SIGKILL"))
    .argument("<job-id>")
    .option("--reason <text>", "why, recorded on the job", "cancelled by the user")
    .action(async (jobId: string, flags: { reason: string; json?: boolean }, self: Command) => {
      await withScheduler(self, async (client) => {
        const { job } = await client.cancelJob({ jobId, reason: flags.reason });
        if (!job) throw new CliError(`the scheduler answered CancelJob without a job for ${jobId}`);
        const view = jobJson(job);
        if (flags.json) printJson(view);
        else print(`job ${view.id}: ${view.state}${view.state === "cancelled" ? "" : " (cancel requested)"}`);
      });
    });
}
