/** The `--from`, `--to` and `--month` flags the billing verbs share, and their resolution (usage errors exit 1). */
import type { Command } from "commander";
import { CliError } from "./errors.js";
import { type Period, PeriodError, type PeriodFlags, resolvePeriod } from "./period.js";

export function addPeriodOptions(cmd: Command): Command {
  return cmd
    .option(
      "--from <date>",
      "from this date or time (UTC), e.g. 2026-11-01, 2026-11-01T12:00, 7d (ago); default: the beginning",
    )
    .option("--to <date>", "up to this date or time, a bare day or month included whole (default: now)")
    .option("--month <YYYY-MM>", "one calendar month (UTC): YYYY-MM, this or last");
}

export function periodFromFlags(flags: PeriodFlags, nowMs = Date.now()): Period {
  try {
    return resolvePeriod(flags, nowMs);
  } catch (err) {
    if (err instanceof PeriodError) throw new CliError(err.message);
    throw err;
  }
}
