import { Command } from "commander";
import { jsonOption, print, printJson, withScheduler } from "../context.js";
import type { PeriodFlags } from "../period.js";
import { addPeriodOptions, periodFromFlags } from "../period-flags.js";
import { invoiceJson, renderInvoice } from "../render-billing.js";

interface BillFlags extends PeriodFlags {
  job?: string;
  json?: boolean;
}

export function billCommand(): Command {
  const cmd = new Command("bill").description(
    "the tenant's invoice: charges per finished allocation, grouped by job, with totals (--tenant picks the tenant)",
  );
  addPeriodOptions(cmd).option("--job <id>", "only this job");
  return jsonOption(cmd).action(async (flags: BillFlags, self: Command) => {
    const period = periodFromFlags(flags);
    await withScheduler(self, async (client) => {
      const invoice = await client.getInvoice({
        tenant: client.options.tenant,
        fromUnixMs: period.fromMs,
        toUnixMs: period.toMs,
        jobId: flags.job ?? "",
      });
      if (flags.json) printJson(invoiceJson(invoice));
      else print(renderInvoice(invoice));
    });
  });
}
