/**
 * No submit fails from contention: 32 concurrent clients of ONE tenant, every submit reserving against the
 * same budget document, get 0 ABORTED (the tenant's budget operations are group-committed, never retried to
 * exhaustion). With a monthly cap that only some fit, exactly those are admitted, the rest are refused with
 * FAILED_PRECONDITION, and the tenant never holds more than its cap.
 */
import type * as pb from "@capa/api";
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Harness, rpc, spec, startHarness, submit } from "./scheduler-harness.js";

let h: Harness;

beforeAll(async () => {
  h = await startHarness();
});

afterAll(async () => {
  await h?.stop();
});

async function hammer(tenant: string, clients: number, perClient: number, jobSpec: pb.JobSpec) {
  const codes = new Map<string, number>();
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      for (let i = 0; i < perClient; i++) {
        try {
          await submit(h, jobSpec, { tenant, requestId: `c${c}-${i}` });
          codes.set("OK", (codes.get("OK") ?? 0) + 1);
        } catch (err) {
          const code = status[(err as { code: number }).code] ?? "UNKNOWN";
          codes.set(code, (codes.get(code) ?? 0) + 1);
        }
      }
    }),
  );
  return codes;
}

describe("concurrent submits of one tenant", () => {
  it("32 clients, 320 submits: all admitted, 0 ABORTED", async () => {
    const codes = await hammer("crowd", 32, 10, spec({ maxPriceMicrosPerGpuHour: 1_000_000 }));
    expect(Object.fromEntries(codes)).toEqual({ OK: 320 });
    const limits = await rpc<pb.GetTenantLimitsResponse>((cb) => h.billing.getTenantLimits({ tenant: "crowd" }, cb));
    // Each job without agents reserves one hour at its max price ($1): all 320 reservations are held.
    expect(limits.reservedMicros).toBe(320 * 1_000_000);
  });

  it("32 clients against a cap that fits 40 jobs: exactly 40 admitted, the rest refused, 0 ABORTED", async () => {
    await rpc((cb) =>
      h.billing.setTenantLimits(
        { limits: { tenant: "capped", monthlyCapMicros: 40_000_000, updatedAtUnixMs: 0 }, actor: "test" },
        cb,
      ),
    );
    const codes = await hammer("capped", 32, 5, spec({ maxPriceMicrosPerGpuHour: 1_000_000 }));
    expect(Object.fromEntries(codes)).toEqual({ OK: 40, FAILED_PRECONDITION: 120 });
    const limits = await rpc<pb.GetTenantLimitsResponse>((cb) => h.billing.getTenantLimits({ tenant: "capped" }, cb));
    expect(limits.reservedMicros).toBe(40_000_000);
    expect(limits.availableMicros).toBe(0);
  });
});
