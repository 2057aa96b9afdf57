/**
 * A tenant's operator-set ceilings. At admission a priority above the ceiling is refused (INVALID_ARGUMENT on
 * spec.priority, naming the ceiling). At placement a spec that names no max price is placed as if it named the
 * tenant's default one, so an uncapped tenant never meets a runaway price; the stored spec keeps its 0 (the
 * budget reservation of an uncapped job is priced from the order book, not from the default cap).
 */
import { ValidationError } from "@capa/domain";

export function admitWithTenantPolicy<S extends { priority: number; maxPricePerGpuHour: number }>(
  policy: { tenant: string; maxPriority: number; defaultMaxPrice: number },
  spec: S,
): S {
  if (Number.isInteger(spec.priority) && spec.priority > policy.maxPriority)
    throw new ValidationError([
      {
        field: "spec.priority",
        message: `must be at most ${policy.maxPriority}, the ceiling an operator set for tenant ${policy.tenant}`,
      },
    ]);
  return spec;
}

export function withDefaultMaxPrice<S extends { maxPricePerGpuHour: number }>(
  spec: S,
  defaultMaxPrice: () => number,
): S {
  return spec.maxPricePerGpuHour > 0 ? spec : { ...spec, maxPricePerGpuHour: defaultMaxPrice() };
}
