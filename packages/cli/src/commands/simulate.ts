import { jobSpecToPb } from "@capa/bus";
import { Command } from "commander";
import { jsonOption, print, printJson, withScheduler } from "../context.js";
import { CliError } from "../errors.js";
import { resolveSpec } from "../job-input.js";
import { renderExplanation } from "../render.js";
import { addSpecOptions, parseInteger, type SpecFlags } from "../spec.js";

interface SimulateFlags extends SpecFlags {
  profile?: string;
  seed?: number;
  json?: boolean;
}

export function simulateCommand(): Command {
  const cmd = new Command("simulate")
    .description("dry run: where would this spec be placed now, and why (nothing is submitted)")
    .argument("[command...]", "the command, after -- (default: true)");
  addSpecOptions(cmd)
    .option("--profile <name>", "use this policy profile instead of the active one")
    .option("--seed <n>", "tie-break seed, for reproducible answers", parseInteger);
  jsonOption(cmd).action(async (command: string[], flags: SimulateFlags, self: Command) => {
    // A dry run needs no real command, but a spec without one is invalid: stand in a harmless one.
    const spec = resolveSpec(self, flags, command, { verb: "simulate", defaultCommand: ["true"] });
    await withScheduler(self, async (client) => {
      const { explanation } = await client.simulate({
        spec: jobSpecToPb(spec),
        profile: flags.profile ?? "",
        seed: flags.seed ?? 0,
      });
      if (!explanation) throw new CliError("the scheduler answered Simulate without an explanation");
      if (flags.json) printJson(explanation);
      else print(renderExplanation(explanation));
    });
  });
  return cmd;
}
