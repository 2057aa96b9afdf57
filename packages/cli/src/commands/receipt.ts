import { readFileSync, writeFileSync } from "node:fs";
import { receiptFromPb, receiptToJson } from "@capa/ledger";
import { Command } from "commander";
import { jsonOption, print, printJson, withScheduler } from "../context.js";
import { CliError } from "../errors.js";
import type { PeriodFlags } from "../period.js";
import { addPeriodOptions, periodFromFlags } from "../period-flags.js";
import { checkReceipt, RECEIPT_UNCHECKED } from "../receipt-check.js";
import { receiptJson, renderReceiptsTable } from "../render-billing.js";
import { parseInteger } from "../spec.js";

export function receiptCommand(): Command {
  const receipt = new Command("receipt").description(
    "signed receipts of finished allocations: fetch, list, verify offline",
  );
  receipt.addCommand(getCommand());
  receipt.addCommand(listCommand());
  receipt.addCommand(verifyCommand());
  return receipt;
}

function getCommand(): Command {
  return new Command("get")
    .description("one receipt as its signed JSON document (the file `capa receipt verify` checks)")
    .argument("<receipt-id>", "e.g. rcpt:<task-id>:<epoch> (from capa receipt list)")
    .option("-o, --output <file>", "write it to this file instead of stdout")
    .action(async (receiptId: string, flags: { output?: string }, self: Command) => {
      await withScheduler(self, async (client) => {
        const { receipt } = await client.getReceipt({ receiptId });
        if (!receipt) throw new CliError(`the scheduler answered GetReceipt without receipt ${receiptId}`);
        const text = receiptToJson(receiptFromPb(receipt));
        if (!flags.output) {
          process.stdout.write(text);
          return;
        }
        try {
          writeFileSync(flags.output, text);
        } catch (err) {
          throw new CliError(`cannot write ${flags.output}: ${(err as Error).message}`);
        }
        process.stderr.write(`wrote receipt ${receipt.receiptId} to ${flags.output}\n`);
      });
    });
}

interface ListFlags extends PeriodFlags {
  job?: string;
  agent?: string;
  limit?: number;
  json?: boolean;
}

function listCommand(): Command {
  const cmd = new Command("list").description(
    "receipts, oldest first: the tenant's (--tenant), or one agent's (--agent) for providers",
  );
  cmd
    .option("--job <id>", "only this job's")
    .option("--agent <id>", "this agent's receipts, whatever the tenant")
    .option("--limit <n>", "at most this many", parseInteger);
  addPeriodOptions(cmd);
  return jsonOption(cmd).action(async (flags: ListFlags, self: Command) => {
    if (flags.limit !== undefined && flags.limit < 0) throw new CliError("--limit must not be negative");
    const period = periodFromFlags(flags);
    await withScheduler(self, async (client) => {
      const { receipts } = await client.listReceipts({
        // A provider asking for an agent's receipts sees every tenant's; otherwise the tenant's own.
        tenant: flags.agent ? "" : client.options.tenant,
        agentId: flags.agent ?? "",
        jobId: flags.job ?? "",
        fromUnixMs: period.fromMs,
        toUnixMs: period.toMs,
        limit: flags.limit ?? 0,
        pageToken: "",
      });
      if (flags.json) printJson({ receipts: receipts.map(receiptJson) });
      else print(renderReceiptsTable(receipts));
    });
  });
}

function verifyCommand(): Command {
  return jsonOption(
    new Command("verify")
      .description(
        "check a receipt file's Ed25519 signature and arithmetic: exit 0 valid, 1 not valid or could not check, 2 usage error",
      )
      .argument("<file>", "a receipt from capa receipt get -o FILE ('-' = stdin)")
      .option("--key <pem-file>", "the scheduler's public key (SPKI PEM): verify offline (default: ask the scheduler)"),
  ).action(async (file: string, flags: { key?: string; json?: boolean }, self: Command) => {
    const text = readText(file === "-" ? 0 : file, file === "-" ? "stdin" : file);
    const publicKeyPem = flags.key ? readText(flags.key, flags.key) : await fetchSigningKey(self);
    const check = checkReceipt(text, publicKeyPem);
    if (flags.json) printJson(check);
    if (check.valid) {
      if (!flags.json) print(check.message);
      return;
    }
    throw new CliError(check.message, check.exitCode);
  });
}

/** The scheduler's public key; not getting it means the receipt could not be checked (a runtime failure, exit 1). */
async function fetchSigningKey(self: Command): Promise<string> {
  let pem: string;
  try {
    pem = await withScheduler(self, async (client) => (await client.getSigningKey({})).publicKeyPem);
  } catch (err) {
    throw new CliError(`cannot get the signing key (or pass --key): ${(err as Error).message}`, RECEIPT_UNCHECKED);
  }
  if (!pem.trim()) throw new CliError("the scheduler answered GetSigningKey without a key", RECEIPT_UNCHECKED);
  return pem;
}

/** A file's text; failing to read it means the receipt could not be checked (exit 1, "cannot ..."), not that it is invalid. */
function readText(path: string | number, name: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new CliError(`cannot read ${name}: ${(err as Error).message}`, RECEIPT_UNCHECKED);
  }
}
