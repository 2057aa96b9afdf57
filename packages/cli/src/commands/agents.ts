import { Command } from "commander";
import { jsonOption, print, printJson, withScheduler } from "../context.js";
import { renderAgentsTable } from "../render.js";

export function agentsCommand(): Command {
  return jsonOption(new Command("agents").description("list agents: region, GPUs (free/total), prices, last seen"))
    .option("--region <region>", "only agents in this region")
    .action(async (flags: { region?: string; json?: boolean }, self: Command) => {
      await withScheduler(self, async (client) => {
        const { agents } = await client.listAgents({ region: flags.region ?? "", limit: 0, pageToken: "" });
        if (flags.json) printJson({ agents });
        else print(renderAgentsTable(agents, Date.now()));
      });
    });
}
