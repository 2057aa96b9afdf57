/**
 * BillingService over gRPC: invoices, provider earnings, signed receipts, the signing key, tenant limits. Every
 * amount is read from the ledger stream (@capa/ledger); these handlers only validate and convert.
 * Errors: bad input → INVALID_ARGUMENT (field path), unknown receipt → NOT_FOUND, ledger down → UNAVAILABLE.
 */
import type * as pb from "@capa/api";
import { actingTenant, ForbiddenError, isOperator, mayReadProvider, mayReadTenant, type Principal } from "@capa/auth";
import { type FieldViolation, NotFoundError, tenantViolations, throwIfViolations, ValidationError } from "@capa/domain";
import {
  type BudgetStore,
  earningsToPb,
  InvalidReceiptIdError,
  invoiceToPb,
  type Ledger,
  receiptToPb,
  tenantBudgetToPb,
  tenantLimitsToPb,
} from "@capa/ledger";
import { tokenViolations } from "../agents/fleet.js";
import { jobIdViolations } from "../jobs/job-service.js";
import type { JobRepo } from "../store/job-repo.js";
import { callerOf } from "./guard.js";
import { pageByOffset } from "./paging.js";
import { type EdgeContext, unary } from "./unary.js";

export interface BillingDeps extends EdgeContext {
  ledger: Ledger;
  budgets: BudgetStore;
  jobs: JobRepo;
  now: () => number;
  /** The provider an agent advertises ("" when unknown): a provider key sees only its own agents' money. */
  providerOf: (agentId: string) => string;
}

/** A provider credential may name only its own agents (an unknown agent is not its own either). */
function requireOwnAgent(d: BillingDeps, caller: Principal, agentId: string): void {
  if (agentId !== "" && !isOperator(caller.role) && !mayReadProvider(caller, d.providerOf(agentId)))
    throw new ForbiddenError(`agent ${agentId} is not an agent of provider ${caller.provider || "(none)"}`);
}

export const DEFAULT_RECEIPTS_LIMIT = 100;
export const MAX_RECEIPTS_LIMIT = 1000;
const MAX_ACTOR_LENGTH = 128;

/** [from, to) with to = 0 meaning "up to now" (inclusive of this millisecond). */
function period(fromMs: number, toMs: number, nowMs: number, violations: FieldViolation[]) {
  if (!Number.isSafeInteger(fromMs) || fromMs < 0)
    violations.push({ field: "from_unix_ms", message: "must be a non-negative integer" });
  if (!Number.isSafeInteger(toMs) || toMs < 0)
    violations.push({ field: "to_unix_ms", message: "must be a non-negative integer (0 = up to now)" });
  const to = toMs > 0 ? toMs : nowMs + 1;
  if (toMs > 0 && toMs <= fromMs) violations.push({ field: "to_unix_ms", message: "must be after from_unix_ms" });
  return { from: fromMs, to };
}

function capViolations(value: number, field: string): FieldViolation[] {
  return Number.isSafeInteger(value) && value >= 0 ? [] : [{ field, message: "must be a non-negative integer" }];
}

export function billingHandlers(d: BillingDeps): pb.BillingServiceServer {
  return {
    getInvoice: unary(d, "GetInvoice", async (req: pb.GetInvoiceRequest, call) => {
      req.tenant = actingTenant(callerOf(call), req.tenant, "");
      const violations = tenantViolations(req.tenant);
      if (req.jobId !== "") violations.push(...jobIdViolations(req.jobId));
      const { from, to } = period(req.fromUnixMs, req.toUnixMs, d.now(), violations);
      throwIfViolations(violations);
      return invoiceToPb(await d.ledger.invoice(req.tenant, from, to, req.jobId));
    }),
    getEarnings: unary(d, "GetEarnings", async (req: pb.GetEarningsRequest, call) => {
      const caller = callerOf(call);
      if (caller.role === "provider") {
        if (req.provider !== "" && req.provider !== caller.provider)
          throw new ForbiddenError(`provider: this credential is provider ${caller.provider}, not ${req.provider}`);
        requireOwnAgent(d, caller, req.agentId);
        if (req.agentId === "") req.provider = caller.provider;
      }
      const violations = [
        ...tokenViolations(req.agentId, "agent_id", false),
        ...(req.provider.length > 128 ? [{ field: "provider", message: "must be at most 128 characters" }] : []),
      ];
      if (req.agentId === "" && req.provider === "")
        violations.push({ field: "agent_id", message: "agent_id or provider is required" });
      const { from, to } = period(req.fromUnixMs, req.toUnixMs, d.now(), violations);
      throwIfViolations(violations);
      const who = {
        ...(req.agentId ? { agentId: req.agentId } : {}),
        ...(req.provider ? { provider: req.provider } : {}),
      };
      return earningsToPb(await d.ledger.earnings(who, from, to));
    }),
    getReceipt: unary(d, "GetReceipt", async (req: pb.GetReceiptRequest, call) => {
      const caller = callerOf(call);
      if (req.receiptId === "" || req.receiptId.length > 256)
        throw new ValidationError([{ field: "receipt_id", message: "must be a receipt id (rcpt:<taskId>:<epoch>)" }]);
      let receipt: Awaited<ReturnType<Ledger["getReceipt"]>>;
      try {
        receipt = await d.ledger.getReceipt(req.receiptId);
      } catch (err) {
        if (err instanceof InvalidReceiptIdError)
          throw new ValidationError([{ field: "receipt_id", message: err.message }]);
        throw err;
      }
      // Someone else's receipt is answered like a missing one.
      const visible =
        receipt &&
        (mayReadTenant(caller, receipt.tenant) ||
          (caller.role === "provider" && mayReadProvider(caller, d.providerOf(receipt.agentId))));
      if (!receipt || !visible) throw new NotFoundError(`receipt ${req.receiptId} not found`);
      return { receipt: receiptToPb(receipt) };
    }),
    listReceipts: unary(d, "ListReceipts", async (req: pb.ListReceiptsRequest, call) => {
      const caller = callerOf(call);
      if (caller.role === "tenant") req.tenant = actingTenant(caller, req.tenant, "");
      if (caller.role === "provider") {
        if (req.tenant !== "") throw new ForbiddenError("tenant: a provider credential lists its agents' receipts");
        if (req.agentId === "")
          throw new ValidationError([{ field: "agent_id", message: "is required for a provider" }]);
        requireOwnAgent(d, caller, req.agentId);
      }
      const violations: FieldViolation[] = [];
      if (req.tenant !== "") violations.push(...tenantViolations(req.tenant));
      violations.push(...tokenViolations(req.agentId, "agent_id", false));
      if (req.jobId !== "") violations.push(...jobIdViolations(req.jobId));
      if (req.tenant === "" && req.agentId === "" && req.jobId === "")
        violations.push({ field: "tenant", message: "tenant, agent_id or job_id is required" });
      if (req.limit > MAX_RECEIPTS_LIMIT)
        violations.push({ field: "limit", message: `must be at most ${MAX_RECEIPTS_LIMIT}` });
      const { from } = period(req.fromUnixMs, req.toUnixMs, d.now(), violations);
      throwIfViolations(violations);
      // A job alone: narrow the read to its tenant's receipts when the job is known.
      const tenant = req.tenant || (req.jobId && !req.agentId ? (d.jobs.summary(req.jobId)?.tenant ?? "") : "");
      const query = {
        ...(tenant ? { tenant } : {}),
        ...(req.agentId ? { agentId: req.agentId } : {}),
        ...(req.jobId ? { jobId: req.jobId } : {}),
        fromMs: from,
        toMs: req.toUnixMs,
      };
      const page = await pageByOffset((limit) => d.ledger.listReceipts({ ...query, limit }), {
        pageToken: req.pageToken,
        size: req.limit || DEFAULT_RECEIPTS_LIMIT,
        filter: ["receipts", req.tenant, req.agentId, req.jobId, req.fromUnixMs, req.toUnixMs],
      });
      return { receipts: page.items.map(receiptToPb), nextPageToken: page.nextPageToken };
    }),
    getSigningKey: unary(d, "GetSigningKey", () => d.ledger.signingKeyInfo()),
    setTenantLimits: unary(d, "SetTenantLimits", async (req: pb.SetTenantLimitsRequest, call) => {
      // A partial update: only the caps present (proto3 presence) change, applied inside the budget document's
      // CAS, so a concurrent change to the other cap is never written over.
      const limits = req.limits;
      const violations: FieldViolation[] = [];
      if (!limits) violations.push({ field: "limits", message: "is required" });
      else {
        violations.push(...tenantViolations(limits.tenant, "limits.tenant"));
        if (limits.hourlyCapMicros !== undefined)
          violations.push(...capViolations(limits.hourlyCapMicros, "limits.hourly_cap_micros"));
        if (limits.monthlyCapMicros !== undefined)
          violations.push(...capViolations(limits.monthlyCapMicros, "limits.monthly_cap_micros"));
        if (limits.hourlyCapMicros === undefined && limits.monthlyCapMicros === undefined)
          violations.push({
            field: "limits",
            message: "name at least one cap (hourly_cap_micros, monthly_cap_micros)",
          });
      }
      if (req.actor.length > MAX_ACTOR_LENGTH)
        violations.push({ field: "actor", message: `must be at most ${MAX_ACTOR_LENGTH} characters` });
      throwIfViolations(violations);
      const tenant = limits!.tenant;
      const caller = callerOf(call);
      const updatedBy = req.actor || caller.name;
      const outcome = await d.budgets.setLimits(
        tenant,
        {
          ...(limits!.hourlyCapMicros === undefined ? {} : { hourlyCap: limits!.hourlyCapMicros }),
          ...(limits!.monthlyCapMicros === undefined ? {} : { monthlyCap: limits!.monthlyCapMicros }),
          updatedBy,
        },
        d.now(),
      );
      d.logger.info({ tenant, actor: updatedBy, limits: outcome.state.limits }, "tenant limits set");
      return { limits: tenantLimitsToPb(tenant, outcome.state.limits) };
    }),
    getTenantLimits: unary(d, "GetTenantLimits", async (req: pb.GetTenantLimitsRequest, call) => {
      req.tenant = actingTenant(callerOf(call), req.tenant, "");
      throwIfViolations(tenantViolations(req.tenant));
      return tenantBudgetToPb(req.tenant, await d.budgets.summary(req.tenant, d.now()));
    }),
  };
}
