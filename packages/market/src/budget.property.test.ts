/**
 * The budget invariant under random interleavings: settled + Σ reservations never passes the tenant's monthly
 * cap, and Σ reserved hourly rates never pass the hourly cap, whatever order concurrent submitters' reserve,
 * extend, release and settle operations land in.
 *
 * Part 1 drives the in-memory BudgetBook with random operation sequences. Part 2 reproduces the durable design:
 * several async submitters each do a CAS read-modify-write (as TypedKv.mutate does on JetStream KV) through
 * `applyBudgetOp`, and fast-check's scheduler interleaves every read and write.
 */
import { ConflictError } from "@capa/domain";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { applyBudgetOp, type BudgetOp, summarize, type TenantBudget } from "./budget.js";
import { BudgetBook } from "./budget-book.js";
import { BudgetExceededError } from "./errors.js";

const NOW = Date.UTC(2025, 4, 10);
const TENANT = "acme";

function assertInvariant(state: TenantBudget): void {
  const s = summarize(state, NOW);
  if (s.limits.monthlyCap > 0) expect(s.settled + s.reserved).toBeLessThanOrEqual(s.limits.monthlyCap);
  if (s.limits.hourlyCap > 0) expect(s.hourlyCommitted).toBeLessThanOrEqual(s.limits.hourlyCap);
}

type Step =
  | { kind: "reserve"; job: number; amount: number; hourly: number }
  | { kind: "extend"; job: number; amount: number; hourly: number | undefined }
  | { kind: "release"; job: number }
  | { kind: "settle"; job: number; fraction: number };

const job = fc.integer({ min: 0, max: 7 });
const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({
    kind: fc.constant("reserve" as const),
    job,
    amount: fc.integer({ min: 0, max: 600 }),
    hourly: fc.integer({ min: 0, max: 60 }),
  }),
  fc.record({
    kind: fc.constant("extend" as const),
    job,
    amount: fc.integer({ min: 0, max: 300 }),
    // the budget watch's refresh to the running rate: up or down, or absent (rate unchanged)
    hourly: fc.option(fc.integer({ min: 0, max: 90 }), { nil: undefined }),
  }),
  fc.record({ kind: fc.constant("release" as const), job }),
  // settle spends a fraction (0..100 %) of the job's reservation: the scheduler stops a job at its reservation
  fc.record({ kind: fc.constant("settle" as const), job, fraction: fc.integer({ min: 0, max: 100 }) }),
);

describe("budget invariant (property)", () => {
  it("holds after every operation of any sequence, and refusals carry consistent numbers", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 2_000 }),
        fc.integer({ min: 0, max: 150 }),
        fc.array(step, { maxLength: 60 }),
        (monthlyCap, hourlyCap, steps) => {
          const book = new BudgetBook();
          book.setLimits(TENANT, { monthlyCap, hourlyCap }, NOW);
          for (const s of steps) {
            const jobId = `j${s.job}`;
            try {
              if (s.kind === "reserve") book.reserve(TENANT, jobId, { total: s.amount, hourly: s.hourly }, NOW);
              else if (s.kind === "extend") book.extend(TENANT, jobId, s.amount, NOW, s.hourly);
              else if (s.kind === "release") book.release(TENANT, jobId, NOW);
              else {
                const held = book.state(TENANT, NOW).reservations.find((r) => r.jobId === jobId)?.amount ?? 0;
                book.settle(TENANT, jobId, Math.floor((held * s.fraction) / 100), NOW);
              }
            } catch (err) {
              if (err instanceof BudgetExceededError) {
                expect(err.requested).toBeGreaterThan(err.available);
              } else if (!(s.kind === "extend" && (err as Error).name === "UnknownReservationError")) {
                throw err;
              }
            }
            assertInvariant(book.state(TENANT, NOW));
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("serializes concurrent CAS submitters: the sum of reservations never exceeds the cap and the excess is refused", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        fc.integer({ min: 100, max: 1_000 }),
        fc.array(fc.integer({ min: 1, max: 400 }), { minLength: 2, maxLength: 8 }),
        async (scheduler, monthlyCap, amounts) => {
          const kv = new ScheduledCasKv(scheduler);
          kv.seed(applyBudgetOp(undefined, TENANT, { kind: "set-limits", monthlyCap, hourlyCap: 0 }, NOW).state);
          const results = await Promise.all([
            ...amounts.map((amount, i) =>
              kv
                .mutate({ kind: "reserve", jobId: `j${i}`, amount, hourly: 0 })
                .then(() => ({ amount, accepted: true as const }))
                .catch((err: unknown) => {
                  if (!(err instanceof BudgetExceededError)) throw err;
                  return { amount, accepted: false as const, available: err.available };
                }),
            ),
            scheduler.waitIdle(),
          ]).then((all) => all.slice(0, amounts.length) as { amount: number; accepted: boolean; available?: number }[]);

          const accepted = results.filter((r) => r.accepted).reduce((n, r) => n + r.amount, 0);
          expect(accepted).toBeLessThanOrEqual(monthlyCap);
          expect(summarize(kv.current(), NOW).reserved).toBe(accepted);
          for (const committed of kv.history) assertInvariant(committed);
          // every refusal was decided on a state that really could not hold it
          for (const r of results) if (!r.accepted) expect(r.amount).toBeGreaterThan(r.available!);
          // when the submissions together exceed the cap, something was refused
          if (amounts.reduce((a, b) => a + b, 0) > monthlyCap) expect(results.some((r) => !r.accepted)).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });
});

/**
 * A one-key store with revisions, like a JetStream KV entry; reads and writes are scheduled by fast-check so
 * submitters interleave at every await. `mutate` is TypedKv.mutate's loop: read, decide, CAS write, retry.
 */
class ScheduledCasKv {
  private value: TenantBudget | undefined;
  private revision = 0;
  readonly history: TenantBudget[] = [];

  constructor(private readonly scheduler: fc.Scheduler) {}

  seed(value: TenantBudget): void {
    this.value = value;
    this.revision = 1;
  }

  current(): TenantBudget {
    return this.value!;
  }

  private read(): Promise<{ value: TenantBudget | undefined; revision: number }> {
    return this.scheduler.schedule(Promise.resolve({ value: this.value, revision: this.revision }), "read");
  }

  private write(value: TenantBudget, expected: number): Promise<void> {
    return this.scheduler.schedule(Promise.resolve(), "write").then(() => {
      if (expected !== this.revision) throw new ConflictError(`revision ${expected} is stale`);
      this.value = value;
      this.revision++;
      this.history.push(value);
    });
  }

  async mutate(op: BudgetOp): Promise<void> {
    for (;;) {
      const { value, revision } = await this.read();
      const outcome = applyBudgetOp(value, TENANT, op, NOW);
      if (!outcome.changed) return;
      try {
        await this.write(outcome.state, revision);
        return;
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
      }
    }
  }
}
