/** AuthService and AuditService over gRPC: keys, tenant ceilings and the audit trail; validation at the edge. */
import type * as pb from "@capa/api";
import {
  actingTenant,
  ForbiddenError,
  isRole,
  type KeyRecord,
  keyIdViolations,
  mayMint,
  newKeyViolations,
} from "@capa/auth";
import { type FieldViolation, LIMITS, tenantViolations, throwIfViolations, ValidationError } from "@capa/domain";
import type { AuditLog } from "../audit/audit-log.js";
import type { KeyStore } from "../auth/key-store.js";
import type { TenantPolicies } from "../auth/tenant-policy.js";
import { callerOf } from "./guard.js";
import { type EdgeContext, unary } from "./unary.js";

export interface AuthHandlerDeps extends EdgeContext {
  keys: KeyStore;
  tenants: TenantPolicies;
  audit: AuditLog;
  now: () => number;
}

export const DEFAULT_AUDIT_LIMIT = 100;
export const MAX_AUDIT_LIMIT = 1000;

export function keyToPb(r: KeyRecord): pb.ApiKey {
  return {
    keyId: r.keyId,
    role: r.role,
    tenant: r.tenant,
    provider: r.provider,
    name: r.name,
    createdAtUnixMs: r.createdAtMs,
    createdBy: r.createdBy,
  };
}

export function authHandlers(d: AuthHandlerDeps): pb.AuthServiceServer {
  return {
    whoAmI: unary(d, "WhoAmI", (_req: pb.WhoAmIRequest, call) => {
      const record = d.keys.table.get(callerOf(call).keyId);
      return { key: record ? keyToPb(record) : undefined };
    }),
    createKey: unary(d, "CreateKey", async (req: pb.CreateKeyRequest, call) => {
      throwIfViolations(newKeyViolations(req));
      const caller = callerOf(call);
      if (!isRole(req.role) || !mayMint(caller.role, req.role))
        throw new ForbiddenError(`a ${caller.role} credential may not make ${req.role} keys`);
      const key = await d.keys.create({
        role: req.role,
        name: req.name,
        tenant: req.tenant,
        provider: req.provider,
        createdBy: caller.keyId,
        nowMs: d.now(),
      });
      d.logger.info({ keyId: key.record.keyId, role: req.role, by: caller.keyId }, "API key created");
      return { key: keyToPb(key.record), token: key.token };
    }),
    listKeys: unary(d, "ListKeys", (req: pb.ListKeysRequest) => {
      const violations: FieldViolation[] = [];
      if (req.role !== "" && !isRole(req.role))
        violations.push({ field: "role", message: "must be tenant, provider, operator or admin" });
      if (req.tenant !== "") violations.push(...tenantViolations(req.tenant));
      throwIfViolations(violations);
      const keys = d.keys.table
        .list()
        .filter((k) => (req.role === "" || k.role === req.role) && (req.tenant === "" || k.tenant === req.tenant))
        .sort((a, b) => a.createdAtMs - b.createdAtMs || a.keyId.localeCompare(b.keyId));
      return { keys: keys.map(keyToPb) };
    }),
    revokeKey: unary(d, "RevokeKey", async (req: pb.RevokeKeyRequest, call) => {
      throwIfViolations(keyIdViolations(req.keyId));
      const caller = callerOf(call);
      const target = d.keys.table.get(req.keyId);
      // An operator may revoke tenant and provider keys; operator and admin keys are an admin's to revoke.
      if (target && !mayMint(caller.role, target.role))
        throw new ForbiddenError(`a ${caller.role} credential may not revoke ${target.role} keys`);
      const record = await d.keys.revoke(req.keyId);
      d.logger.info({ keyId: req.keyId, by: caller.keyId }, "API key revoked");
      return { key: keyToPb(record) };
    }),
    setTenantPolicy: unary(d, "SetTenantPolicy", async (req: pb.SetTenantPolicyRequest, call) => {
      const p = req.policy;
      const violations: FieldViolation[] = [];
      if (!p) violations.push({ field: "policy", message: "is required" });
      else {
        violations.push(...tenantViolations(p.tenant, "policy.tenant"));
        if (
          p.maxPriority !== undefined &&
          (!Number.isInteger(p.maxPriority) || Math.abs(p.maxPriority) > LIMITS.maxPriority)
        )
          violations.push({
            field: "policy.max_priority",
            message: `must be an integer in -${LIMITS.maxPriority}..${LIMITS.maxPriority}`,
          });
        const price = p.defaultMaxPriceMicrosPerGpuHour;
        if (price !== undefined && (!Number.isSafeInteger(price) || price < 0 || price > LIMITS.maxPricePerGpuHour))
          violations.push({
            field: "policy.default_max_price_micros_per_gpu_hour",
            message: `must be an integer in 0..${LIMITS.maxPricePerGpuHour}`,
          });
        if (p.maxPriority === undefined && price === undefined)
          violations.push({ field: "policy", message: "name max_priority or default_max_price_micros_per_gpu_hour" });
      }
      throwIfViolations(violations);
      const caller = callerOf(call);
      await d.tenants.set(
        p!.tenant,
        {
          ...(p!.maxPriority === undefined ? {} : { maxPriority: p!.maxPriority }),
          ...(p!.defaultMaxPriceMicrosPerGpuHour === undefined
            ? {}
            : { defaultMaxPrice: p!.defaultMaxPriceMicrosPerGpuHour }),
        },
        `${caller.name} (${caller.keyId})`,
        d.now(),
      );
      return { policy: tenantPolicyToPb(d.tenants, p!.tenant) };
    }),
    getTenantPolicy: unary(d, "GetTenantPolicy", (req: pb.GetTenantPolicyRequest, call) => {
      const tenant = actingTenant(callerOf(call), req.tenant, "");
      throwIfViolations(tenantViolations(tenant));
      return { policy: tenantPolicyToPb(d.tenants, tenant) };
    }),
  };
}

function tenantPolicyToPb(tenants: TenantPolicies, tenant: string): pb.TenantPolicy {
  const e = tenants.effective(tenant);
  return {
    tenant,
    maxPriority: e.maxPriority,
    defaultMaxPriceMicrosPerGpuHour: e.defaultMaxPrice,
    updatedBy: e.updatedBy,
    updatedAtUnixMs: e.updatedAtMs,
  };
}

export function auditHandlers(d: AuthHandlerDeps): pb.AuditServiceServer {
  return {
    listAudit: unary(d, "ListAudit", async (req: pb.ListAuditRequest) => {
      const violations: FieldViolation[] = [];
      if (!Number.isSafeInteger(req.fromUnixMs) || req.fromUnixMs < 0)
        violations.push({ field: "from_unix_ms", message: "must be a non-negative integer" });
      if (!Number.isSafeInteger(req.toUnixMs) || req.toUnixMs < 0)
        violations.push({ field: "to_unix_ms", message: "must be a non-negative integer (0 = up to now)" });
      if (req.actor.length > 128) violations.push({ field: "actor", message: "must be at most 128 characters" });
      if (req.method.length > 128) violations.push({ field: "method", message: "must be at most 128 characters" });
      if (req.tenant !== "") violations.push(...tenantViolations(req.tenant));
      if (req.limit > MAX_AUDIT_LIMIT)
        violations.push({ field: "limit", message: `must be at most ${MAX_AUDIT_LIMIT}` });
      if (violations.length > 0) throw new ValidationError(violations);
      const entries = await d.audit.list({
        fromMs: req.fromUnixMs,
        toMs: req.toUnixMs,
        actor: req.actor,
        method: req.method,
        tenant: req.tenant,
        limit: req.limit || DEFAULT_AUDIT_LIMIT,
      });
      return {
        entries: entries.map((e) => ({
          atUnixMs: e.atMs,
          keyId: e.keyId,
          actor: e.actor,
          role: e.role,
          tenant: e.tenant,
          method: e.method,
          target: e.target,
          result: e.result,
          detail: e.detail,
          seq: e.seq ?? 0,
        })),
      };
    }),
  };
}
