import { readFileSync } from "node:fs";
import { Command } from "commander";
import { parse as parseYaml } from "yaml";
import { jsonOption, print, printJson, withScheduler } from "../context.js";
import { CliError, oneLine } from "../errors.js";
import { renderPolicy } from "../render.js";
import { collectWeight } from "../spec.js";

export function policyCommand(): Command {
  const policy = new Command("policy").description("show or change the placement policy (profiles and weights)");
  policy.addCommand(
    jsonOption(new Command("get").description("show the active profile and the known ones")).action(
      async (flags: { json?: boolean }, self: Command) => {
        await withScheduler(self, async (client) => {
          const { policy: answer } = await client.getPolicy({});
          if (!answer) throw new CliError("the scheduler answered GetPolicy without a policy");
          if (flags.json) printJson(answer);
          else print(renderPolicy(answer, Date.now()));
        });
      },
    ),
  );
  policy.addCommand(
    jsonOption(new Command("set").description("switch profile, store a profile document, or override weights"))
      .argument("[profile]", "profile to activate (built-in or stored)")
      .option("--file <path>", "a full profile as JSON or YAML; stored under its own name and activated")
      .option("--weight <scorer=weight>", "override a scorer weight, e.g. cost=80 (repeatable)", collectWeight, {})
      .option("--actor <name>", "who made the change (recorded)", process.env.USER ?? "capa-cli")
      .action(
        async (
          profile: string | undefined,
          flags: { file?: string; weight: Record<string, number>; actor: string; json?: boolean },
          self: Command,
        ) => {
          const document = flags.file ? readProfileDocument(flags.file) : "";
          if (!profile && !document && Object.keys(flags.weight).length === 0) {
            throw new CliError("policy set needs a profile name, --file or --weight");
          }
          await withScheduler(self, async (client) => {
            const { policy: answer } = await client.setPolicy({
              profile: profile ?? "",
              profileDocument: document,
              weights: flags.weight,
              actor: flags.actor,
            });
            if (!answer) throw new CliError("the scheduler answered SetPolicy without a policy");
            if (flags.json) printJson(answer);
            else print(renderPolicy(answer, Date.now()));
          });
        },
      ),
  );
  return policy;
}

/** Reads the document and checks it parses, so a typo fails here with the line, not on the server. */
function readProfileDocument(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new CliError(`cannot read ${path}: ${(err as Error).message}`);
  }
  try {
    parseYaml(text); // YAML is a superset of JSON: one parser checks both.
  } catch (err) {
    throw new CliError(`${path} is not valid JSON or YAML: ${oneLine((err as Error).message)}`);
  }
  return text;
}
