import { Command } from "commander";
import { jsonOption, print, printJson, withScheduler } from "../context.js";
import { CliError } from "../errors.js";
import { renderExplanation } from "../render.js";

export function explainCommand(): Command {
  return jsonOption(
    new Command("explain").description("why a job was placed where it is (or why it is pending): scores, rejections"),
  )
    .argument("<job-id>")
    .action(async (jobId: string, flags: { json?: boolean }, self: Command) => {
      await withScheduler(self, async (client) => {
        const { explanation } = await client.explainJob({ jobId });
        if (!explanation) throw new CliError(`the scheduler has no explanation for ${jobId}`);
        if (flags.json) printJson(explanation);
        else print(renderExplanation(explanation));
      });
    });
}
