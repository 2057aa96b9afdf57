/**
 * The ledger's JetStream layout. One stream, `CAPA_LEDGER`, over `capa.v1.ledger.>`; every entry gets a subject
 * of its own, derived from its id, so the subject doubles as a durable "already written" marker:
 *
 *   capa.v1.ledger.charge.<tenant>.<taskId>.<epoch>              what the tenant pays
 *   capa.v1.ledger.payout.<agentId>.<taskId>.<epoch>             what the provider receives
 *   capa.v1.ledger.fee.<agentId>.<taskId>.<epoch>                the platform's share
 *   capa.v1.ledger.receipt.<tenant>.<agentId>.<taskId>.<epoch>   the signed receipt (written last)
 *
 * Invoices read `charge.<tenant>.>`, statements `payout.<agentId>.>` and `fee.<agentId>.>`: a filtered read,
 * never a scan of everyone's entries.
 */
import { SUBJECT_ROOT } from "@capa/bus";
import type { LedgerEntryKind } from "@capa/market";

export const LEDGER_STREAM = "CAPA_LEDGER";
export const LEDGER_SUBJECT_ROOT = `${SUBJECT_ROOT}.ledger`;
export const LEDGER_SUBJECTS = `${LEDGER_SUBJECT_ROOT}.>`;
export const BUDGET_BUCKET = "capa_budgets";

export class InvalidLedgerKeyError extends Error {
  override name = "InvalidLedgerKeyError";
}

const TOKEN = /^[A-Za-z0-9_-]+$/;

/**
 * A subject token for any non-empty name. Plain names pass unchanged; anything else (an e-mail address as a
 * tenant, say) becomes "~" + base64url of its UTF-8, which cannot collide with a plain name since "~" is not
 * in the plain alphabet. Money must never be lost because a name has a dot in it.
 */
export function subjectToken(value: string, what: string): string {
  if (value === "") throw new InvalidLedgerKeyError(`${what} must not be empty`);
  if (TOKEN.test(value)) return value;
  return `~${Buffer.from(value, "utf8").toString("base64url")}`;
}

function epochToken(epoch: number): string {
  if (!Number.isSafeInteger(epoch) || epoch < 0) throw new InvalidLedgerKeyError(`epoch must be >= 0, got ${epoch}`);
  return String(epoch);
}

export interface EntryKey {
  kind: LedgerEntryKind;
  tenant: string;
  agentId: string;
  taskId: string;
  epoch: number;
}

export function entrySubject(e: EntryKey): string {
  const owner = e.kind === "charge" ? subjectToken(e.tenant, "tenant") : subjectToken(e.agentId, "agent id");
  return `${LEDGER_SUBJECT_ROOT}.${e.kind}.${owner}.${subjectToken(e.taskId, "task id")}.${epochToken(e.epoch)}`;
}

export function receiptSubject(r: { tenant: string; agentId: string; taskId: string; epoch: number }): string {
  return (
    `${LEDGER_SUBJECT_ROOT}.receipt.${subjectToken(r.tenant, "tenant")}.${subjectToken(r.agentId, "agent id")}.` +
    `${subjectToken(r.taskId, "task id")}.${epochToken(r.epoch)}`
  );
}

export const ledgerFilters = {
  chargesOf: (tenant: string) => `${LEDGER_SUBJECT_ROOT}.charge.${subjectToken(tenant, "tenant")}.>`,
  allCharges: `${LEDGER_SUBJECT_ROOT}.charge.>`,
  payoutsOf: (agentId: string) => `${LEDGER_SUBJECT_ROOT}.payout.${subjectToken(agentId, "agent id")}.>`,
  feesOf: (agentId: string) => `${LEDGER_SUBJECT_ROOT}.fee.${subjectToken(agentId, "agent id")}.>`,
  allPayouts: `${LEDGER_SUBJECT_ROOT}.payout.>`,
  allFees: `${LEDGER_SUBJECT_ROOT}.fee.>`,
  receiptsOfTenant: (tenant: string) => `${LEDGER_SUBJECT_ROOT}.receipt.${subjectToken(tenant, "tenant")}.>`,
  receiptsOfAgent: (agentId: string) => `${LEDGER_SUBJECT_ROOT}.receipt.*.${subjectToken(agentId, "agent id")}.>`,
  receiptOfTask: (taskId: string, epoch: number) =>
    `${LEDGER_SUBJECT_ROOT}.receipt.*.*.${subjectToken(taskId, "task id")}.${epochToken(epoch)}`,
  allReceipts: `${LEDGER_SUBJECT_ROOT}.receipt.>`,
  /**
   * Every charge, fee and payout, and no receipt, in one filter (nats-server 2.9 takes one subject per
   * consumer): an entry's subject has 7 tokens (root, kind, owner, task, epoch), a receipt's 8 (it names tenant
   * and agent). Tokens never hold a dot (`subjectToken`), so the count is exact.
   */
  allEntries: `${LEDGER_SUBJECT_ROOT}.*.*.*.*`,
};
