import { Command } from "commander";
import { jsonOption, print, printJson, withScheduler } from "../context.js";
import { CliError } from "../errors.js";
import type { PeriodFlags } from "../period.js";
import { addPeriodOptions, periodFromFlags } from "../period-flags.js";
import { renderEarnings } from "../render-billing.js";

interface EarningsFlags extends PeriodFlags {
  agent?: string;
  provider?: string;
  json?: boolean;
}

export function earningsCommand(): Command {
  const cmd = new Command("earnings").description(
    "a provider's statement: gross, platform fee and payout per finished allocation, for one agent or provider",
  );
  cmd.option("--agent <id>", "one agent").option("--provider <name>", "every agent of this provider");
  addPeriodOptions(cmd);
  return jsonOption(cmd).action(async (flags: EarningsFlags, self: Command) => {
    if ((flags.agent === undefined) === (flags.provider === undefined)) {
      throw new CliError("earnings needs one of --agent ID or --provider NAME");
    }
    const period = periodFromFlags(flags);
    await withScheduler(self, async (client) => {
      const earnings = await client.getEarnings({
        agentId: flags.agent ?? "",
        provider: flags.provider ?? "",
        fromUnixMs: period.fromMs,
        toUnixMs: period.toMs,
      });
      if (flags.json) printJson(earnings);
      else print(renderEarnings(earnings));
    });
  });
}
