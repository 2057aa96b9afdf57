import type * as api from "@capa/api";
import { Command } from "commander";
import { jsonOption, print, printJson, withScheduler } from "../context.js";
import { CliError } from "../errors.js";
import { formatAge, formatPrice, renderFields } from "../format.js";
import { renderTenantLimits } from "../render-billing.js";
import { parseInteger, parseMoney } from "../spec.js";

export function tenantCommand(): Command {
  const tenant = new Command("tenant").description("tenant settings (--tenant picks the tenant)");
  const limits = new Command("limits").description("spending limits: an hourly rate cap and a monthly cap");
  limits.addCommand(getLimitsCommand());
  limits.addCommand(setLimitsCommand());
  tenant.addCommand(limits);
  const policy = new Command("policy").description(
    "operator-set ceilings: the highest priority and the default max price per GPU-hour of jobs that name none",
  );
  policy.addCommand(
    jsonOption(new Command("get").description("the tenant's effective ceilings")).action(
      async (flags: { json?: boolean }, self: Command) => {
        await withScheduler(self, async (client) => {
          const { policy: p } = await client.getTenantPolicy({ tenant: client.options.tenant });
          if (!p) throw new CliError("the scheduler answered GetTenantPolicy without a policy");
          if (flags.json) printJson(p);
          else print(renderTenantPolicy(p));
        });
      },
    ),
  );
  policy.addCommand(
    jsonOption(
      new Command("set")
        .description("change a tenant's ceilings (operators); a field left out keeps its value")
        .option("--max-priority <n>", "highest priority the tenant may submit", parseInteger)
        .option("--default-max-price <usd>", "max $/GPU-hour of its jobs that name none (0 = the default)", parseMoney),
    ).action(async (flags: { maxPriority?: number; defaultMaxPrice?: number; json?: boolean }, self: Command) => {
      if (flags.maxPriority === undefined && flags.defaultMaxPrice === undefined)
        throw new CliError("tenant policy set needs --max-priority and/or --default-max-price");
      await withScheduler(self, async (client) => {
        const { policy: p } = await client.setTenantPolicy({
          policy: {
            tenant: client.options.tenant,
            ...(flags.maxPriority === undefined ? {} : { maxPriority: flags.maxPriority }),
            ...(flags.defaultMaxPrice === undefined ? {} : { defaultMaxPriceMicrosPerGpuHour: flags.defaultMaxPrice }),
            updatedBy: "",
            updatedAtUnixMs: 0,
          },
        });
        if (!p) throw new CliError("the scheduler answered SetTenantPolicy without a policy");
        if (flags.json) printJson(p);
        else print(renderTenantPolicy(p));
      });
    }),
  );
  tenant.addCommand(policy);
  return tenant;
}

function renderTenantPolicy(p: api.TenantPolicy): string {
  return renderFields([
    ["tenant", p.tenant],
    ["max priority", String(p.maxPriority ?? "-")],
    ["default max price", `${formatPrice(p.defaultMaxPriceMicrosPerGpuHour)}/GPU-h`],
    ["updated", p.updatedAtUnixMs ? `${formatAge(p.updatedAtUnixMs, Date.now())} by ${p.updatedBy}` : "never"],
  ]);
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
