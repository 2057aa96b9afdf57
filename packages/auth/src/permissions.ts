/**
 * The permission table, as data: for every RPC (`Service/Method`, package-less), the roles that may call it and
 * whether it changes state (then it is audited). Tenant scoping (own jobs, own bills) is applied by the handlers
 * with `actingTenant` / `mayReadTenant`; this table only says who may knock. Health and reflection are not here:
 * they stay open. A method missing from the table is operator-only (fail closed for tenants and providers);
 * a test checks that every method of the served services is listed.
 */
import { ForbiddenError } from "./errors.js";
import type { Principal } from "./principal.js";
import type { Role } from "./roles.js";

export interface MethodRule {
  roles: readonly Role[];
  /** Audited: every call, allowed or not, appends an entry to the audit stream. */
  mutating: boolean;
}

const TENANTS: readonly Role[] = ["tenant", "operator", "admin"];
const PROVIDERS: readonly Role[] = ["provider", "operator", "admin"];
const OPERATORS: readonly Role[] = ["operator", "admin"];
const EVERYONE: readonly Role[] = ["tenant", "provider", "operator", "admin"];

const read = (roles: readonly Role[]): MethodRule => ({ roles, mutating: false });
const write = (roles: readonly Role[]): MethodRule => ({ roles, mutating: true });

export const PERMISSIONS: Readonly<Record<string, MethodRule>> = {
  "JobService/SubmitJob": write(TENANTS),
  "JobService/GetJob": read(TENANTS),
  "JobService/ListJobs": read(TENANTS),
  "JobService/CancelJob": write(TENANTS),
  "JobService/WatchJob": read(TENANTS),
  "JobService/StreamLogs": read(TENANTS),
  "JobService/Quote": read(TENANTS),
  "JobService/ListOffers": read(EVERYONE),
  "JobService/GetVersion": read(EVERYONE),
  "OperatorService/ListAgents": read(OPERATORS),
  "OperatorService/DrainAgent": write(OPERATORS),
  "OperatorService/GetPolicy": read(OPERATORS),
  "OperatorService/SetPolicy": write(OPERATORS),
  "OperatorService/ExplainJob": read(TENANTS),
  "OperatorService/Simulate": read(OPERATORS),
  // CPU-heavy (a worker thread, one at a time) and over uploaded inputs: operators only; it changes no state.
  "OperatorService/Replay": read(OPERATORS),
  "BillingService/GetInvoice": read(TENANTS),
  "BillingService/GetEarnings": read(PROVIDERS),
  "BillingService/GetReceipt": read(EVERYONE),
  "BillingService/ListReceipts": read(EVERYONE),
  "BillingService/GetSigningKey": read(EVERYONE),
  "BillingService/SetTenantLimits": write(OPERATORS),
  "BillingService/GetTenantLimits": read(TENANTS),
  "AuthService/WhoAmI": read(EVERYONE),
  "AuthService/CreateKey": write(OPERATORS),
  "AuthService/ListKeys": read(OPERATORS),
  "AuthService/RevokeKey": write(OPERATORS),
  "AuthService/SetTenantPolicy": write(OPERATORS),
  "AuthService/GetTenantPolicy": read(TENANTS),
  "AuditService/ListAudit": read(OPERATORS),
  // Inference services: the scheduler sets each request's tenant field to the caller's tenant (scopedByTenantField).
  "ServiceService/ApplyService": write(TENANTS),
  "ServiceService/GetService": read(TENANTS),
  "ServiceService/ListServices": read(TENANTS),
  "ServiceService/DeleteService": write(TENANTS),
  "ServiceService/ListEndpoints": read(TENANTS),
  "ServiceService/PromoteRollout": write(TENANTS),
  "ServiceService/AbortRollout": write(TENANTS),
  // Gateway load telemetry, many per second: not audited.
  "ServiceService/ReportLoad": read(TENANTS),
  // Schedules: tenant-scoped like services (scopedByTenantField); a trigger starts a job, so it is audited.
  "ScheduleService/ApplySchedule": write(TENANTS),
  "ScheduleService/GetSchedule": read(TENANTS),
  "ScheduleService/ListSchedules": read(TENANTS),
  "ScheduleService/DeleteSchedule": write(TENANTS),
  "ScheduleService/TriggerSchedule": write(TENANTS),
};

const UNLISTED: MethodRule = { roles: OPERATORS, mutating: true };

/** `/capa.v1.JobService/SubmitJob` or `JobService/SubmitJob` → its rule (operator-only when unlisted). */
export function ruleFor(method: string): MethodRule {
  return PERMISSIONS[shortMethod(method)] ?? UNLISTED;
}

export function shortMethod(path: string): string {
  const trimmed = path.startsWith("/") ? path.slice(1) : path;
  const slash = trimmed.indexOf("/");
  if (slash < 0) return trimmed;
  const service = trimmed.slice(0, slash);
  return `${service.slice(service.lastIndexOf(".") + 1)}${trimmed.slice(slash)}`;
}

/** Throws PERMISSION_DENIED unless the principal's role may call the method. */
export function authorize(p: Principal, method: string): MethodRule {
  const rule = ruleFor(method);
  if (!rule.roles.includes(p.role))
    throw new ForbiddenError(`a ${p.role} credential may not call ${shortMethod(method)}`);
  return rule;
}
