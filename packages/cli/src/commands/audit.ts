/** `capa audit`: the audit trail of mutating calls (operators), filtered by time, actor, method and tenant. */
import { Command } from "commander";
import { jsonOption, print, printJson, withScheduler } from "../context.js";
import { renderTable } from "../format.js";
import type { PeriodFlags } from "../period.js";
import { formatInstant } from "../period.js";
import { addPeriodOptions, periodFromFlags } from "../period-flags.js";
import { parseInteger } from "../spec.js";

interface AuditFlags extends PeriodFlags {
  actor?: string;
  method?: string;
  limit?: number;
  json?: boolean;
}

export function auditCommand(): Command {
  const cmd = new Command("audit")
    .description(
      "who did what when: every authenticated mutating call, allowed or refused, oldest first (--tenant filters)",
    )
    .option("--actor <who>", "only calls by this key id or key name")
    .option("--method <method>", "only this method, e.g. SetPolicy or OperatorService/SetPolicy")
    .option("--limit <n>", "the newest N entries (default 100, at most 1000)", parseInteger);
  return jsonOption(addPeriodOptions(cmd)).action(async (flags: AuditFlags, self: Command) => {
    const hasPeriod = flags.from !== undefined || flags.to !== undefined || flags.month !== undefined;
    const period = hasPeriod ? periodFromFlags(flags) : { fromMs: 0, toMs: 0 };
    await withScheduler(self, async (client) => {
      const { entries } = await client.listAudit({
        fromUnixMs: period.fromMs,
        toUnixMs: period.toMs,
        actor: flags.actor ?? "",
        method: flags.method ?? "",
        tenant: client.options.tenant,
        limit: flags.limit ?? 0,
      });
      if (flags.json) printJson(entries);
      else
        print(
          renderTable(
            ["WHEN", "ACTOR", "ROLE", "TENANT", "METHOD", "TARGET", "RESULT"],
            entries.map((e) => [
              formatInstant(e.atUnixMs),
              `${e.actor} (${e.keyId})`,
              e.role,
              e.tenant || "-",
              e.method,
              e.target || "-",
              e.result,
            ]),
          ),
        );
    });
  });
}
