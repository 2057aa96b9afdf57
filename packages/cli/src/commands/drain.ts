import { Command } from "commander";
import { jsonOption, print, printJson, withScheduler } from "../context.js";
import { CliError } from "../errors.js";

export function drainCommand(): Command {
  return jsonOption(
    new Command("drain").description("stop placing new tasks on an agent (running ones finish); --undo reverses it"),
  )
    .argument("<agent-id>")
    .option("--undo", "make the agent schedulable again")
    .action(async (agentId: string, flags: { undo?: boolean; json?: boolean }, self: Command) => {
      await withScheduler(self, async (client) => {
        const { agent } = await client.drainAgent({ agentId, drain: !flags.undo });
        if (!agent) throw new CliError(`the scheduler answered DrainAgent without the agent ${agentId}`);
        if (flags.json) printJson(agent);
        else print(`agent ${agent.agentId}: ${agent.status}`);
      });
    });
}
