import type * as api from "@capa/api";
import { Command } from "commander";
import { jsonOption, print, printJson, withScheduler } from "../context.js";
import { CliError } from "../errors.js";
import { renderTenantLimits } from "../render-billing.js";
import { parseMoney } from "../spec.js";

export function tenantCommand(): Command {
  const tenant = new Command("tenant").description("tenant settings (--tenant picks the tenant)");
  const limits = new Command("limits").description("spending limits: an hourly rate cap and a monthly cap");
  limits.addCommand(getLimitsCommand());
  limits.addCommand(setLimitsCommand());
  tenant.addCommand(limits);
  return tenant;
}

function getLimitsCommand(): Command {
  return jsonOption(
    new Command("get").description("the caps and this month's settled, reserved and available money"),
  ).action(async (flags: { json?: boolean }, self: Command) => {
    await withScheduler(self, async (client) => {
      const answer = await client.getTenantLimits({ tenant: client.options.tenant });
      if (flags.json) printJson(answer);
      else print(renderTenantLimits(answer, Date.now()));
    });
  });
}

interface SetLimitsFlags {
  hourly?: number;
  monthly?: number;
  actor: string;
  json?: boolean;
}

function setLimitsCommand(): Command {
  return jsonOption(
    new Command("set")
      .description("change the caps; a cap left out keeps its value, 0 removes it")
      .option("--hourly <usd>", "most the tenant's admitted jobs may cost per hour together, in dollars", parseMoney)
      .option("--monthly <usd>", "most the tenant may spend (settled + reserved) per calendar month (UTC)", parseMoney)
      .option(
        "--actor <name>",
        "who made the change (stored with the limits; `tenant limits get` shows it)",
        process.env.USER ?? "capa-cli",
      ),
  ).action(async (flags: SetLimitsFlags, self: Command) => {
    if (flags.hourly === undefined && flags.monthly === undefined) {
      throw new CliError("tenant limits set needs --hourly and/or --monthly (0 removes a cap)");
    }
    for (const [flag, value] of [
      ["--hourly", flags.hourly],
      ["--monthly", flags.monthly],
    ] as const) {
      if (value !== undefined && value < 0) throw new CliError(`${flag} must not be negative`);
    }
    await withScheduler(self, async (client) => {
      const tenant = client.options.tenant;
      // Only the caps given are sent (proto3 presence): the scheduler changes those alone, inside the budget
      // document's CAS, so a concurrent change to the other cap is kept rather than written over.
      const limits: api.TenantLimits = {
        tenant,
        ...(flags.hourly === undefined ? {} : { hourlyCapMicros: flags.hourly }),
        ...(flags.monthly === undefined ? {} : { monthlyCapMicros: flags.monthly }),
        updatedAtUnixMs: 0,
      };
      await client.setTenantLimits({ limits, actor: flags.actor });
      const answer = await client.getTenantLimits({ tenant });
      if (flags.json) printJson(answer);
      else print(renderTenantLimits(answer, Date.now()));
    });
  });
}
