/** Who is calling, as the credential says, and the tenant-scoping rules every handler applies. */
import { ForbiddenError } from "./errors.js";
import type { KeyRecord } from "./keys.js";
import { isOperator, type Role } from "./roles.js";

export interface Principal {
  keyId: string;
  name: string;
  role: Role;
  /** Set for tenant keys only. */
  tenant: string;
  /** Set for provider keys only. */
  provider: string;
}

export function principalOf(record: KeyRecord): Principal {
  return {
    keyId: record.keyId,
    name: record.name,
    role: record.role,
    tenant: record.tenant,
    provider: record.provider,
  };
}

/**
 * The tenant a call acts for. A tenant key acts for its own tenant: the request may leave the field empty or name
 * that same tenant; naming another is PERMISSION_DENIED. An operator names the tenant it acts for; empty means
 * `fallback` ("" where the method reads across tenants, e.g. ListJobs).
 */
export function actingTenant(p: Principal, requested: string, fallback: string, field = "tenant"): string {
  if (p.role === "tenant") {
    if (requested !== "" && requested !== p.tenant)
      throw new ForbiddenError(`${field}: this credential acts for tenant ${p.tenant}, not ${requested}`);
    return p.tenant;
  }
  if (isOperator(p.role)) return requested !== "" ? requested : fallback;
  throw new ForbiddenError(`a ${p.role} credential cannot act for a tenant`);
}

/** Whether the caller may see a resource owned by `tenant`: its own, or any for an operator. */
export function mayReadTenant(p: Principal, tenant: string): boolean {
  return isOperator(p.role) || (p.role === "tenant" && p.tenant === tenant);
}

/** Whether the caller may see a resource of `provider`: its own, or any for an operator. */
export function mayReadProvider(p: Principal, provider: string): boolean {
  return isOperator(p.role) || (p.role === "provider" && provider !== "" && p.provider === provider);
}

/** One line for logs and audit entries: "alice (tenant acme, key 0123…)". Never the secret. */
export function describePrincipal(p: Principal): string {
  const scope = p.role === "tenant" ? ` ${p.tenant}` : p.role === "provider" ? ` ${p.provider}` : "";
  return `${p.name} (${p.role}${scope}, key ${p.keyId})`;
}
