import { jobSpecToPb } from "@capa/bus";
import { Command } from "commander";
import { jsonOption, print, printJson, withScheduler } from "../context.js";
import { resolveSpec } from "../job-input.js";
import { renderQuote } from "../render.js";
import { addSpecOptions, type SpecFlags } from "../spec.js";

export function quoteCommand(): Command {
  const cmd = new Command("quote")
    .description(
      "price and start-time estimate for a spec, without submitting it (same flags as submit; exit 0 even when nothing fits)",
    )
    .argument("[command...]", "the command, after -- (default: true)");
  addSpecOptions(cmd);
  jsonOption(cmd).action(async (command: string[], flags: SpecFlags & { json?: boolean }, self: Command) => {
    const spec = resolveSpec(self, flags, command, { verb: "quote", defaultCommand: ["true"] });
    await withScheduler(self, async (client) => {
      const answer = await client.quote({ tenant: client.options.tenant, spec: jobSpecToPb(spec) });
      if (flags.json) printJson(answer);
      else print(renderQuote(answer, { nowMs: Date.now(), durationSeconds: spec.expectedDurationSeconds }));
    });
  });
  return cmd;
}
