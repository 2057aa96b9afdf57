/**
 * Who can call: four roles. A tenant submits and reads its own jobs and bills; a provider reads its own agents'
 * earnings and receipts; an operator runs the fleet (policy, drain, limits, tenant/provider keys) and may act on
 * behalf of any tenant; admin is the bootstrap role, an operator that may also mint operator and admin keys.
 */
export const ROLES = ["tenant", "provider", "operator", "admin"] as const;
export type Role = (typeof ROLES)[number];

export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}

/** Operators and admins act for the platform: they may name any tenant in a request. */
export function isOperator(role: Role): boolean {
  return role === "operator" || role === "admin";
}

/** Which roles a caller may mint keys for: operators mint tenant/provider keys, only admins mint operator/admin. */
export function mayMint(caller: Role, minted: Role): boolean {
  if (caller === "admin") return true;
  if (caller === "operator") return minted === "tenant" || minted === "provider";
  return false;
}
