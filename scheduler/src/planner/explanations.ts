/**
 * The last plan's explanation per job: an in-memory LRU for ExplainJob, persisted to KV
 * `capa_jobs/explain.<jobId>` so it survives a restart and any replica can answer. Re-plans of a waiting job
 * produce the same explanation again and again; it is written only when it differs (ignoring the time).
 * Writes are CAS (read-modify-write on the stored revision): an explanation never replaces a newer one, e.g. one
 * written by a leader that took over while this replica still finished a plan.
 * Job records are never deleted from `capa_jobs` (final jobs stay, see README "KV layout"), so neither is the
 * explanation key; if job removal is ever added, it must delete `explain.<jobId>` with the job.
 */
import type { TypedKv } from "@capa/bus";
import { LRUCache } from "lru-cache";
import type { Logger } from "pino";
import { EXPLAIN_PREFIX } from "../store/buckets.js";
import type { Explanation } from "./engine.js";

export class ExplanationStore {
  private readonly cache: LRUCache<string, Explanation>;

  constructor(
    private readonly kv: TypedKv<Explanation>,
    private readonly logger: Logger,
    max = 10_000,
  ) {
    this.cache = new LRUCache({ max });
  }

  async record(explanation: Explanation): Promise<void> {
    const previous = this.cache.get(explanation.jobId);
    this.cache.set(explanation.jobId, explanation);
    if (previous && sameDecision(previous, explanation)) return;
    try {
      await this.kv.mutate(EXPLAIN_PREFIX + explanation.jobId, (stored) =>
        stored && (stored.decidedAtMs > explanation.decidedAtMs || sameDecision(stored, explanation))
          ? undefined
          : explanation,
      );
    } catch (err) {
      this.logger.warn({ err, jobId: explanation.jobId }, "could not persist an explanation");
    }
  }

  async get(jobId: string): Promise<Explanation | undefined> {
    const cached = this.cache.get(jobId);
    if (cached) return cached;
    const stored = await this.kv.get(EXPLAIN_PREFIX + jobId);
    if (stored) this.cache.set(jobId, stored.value);
    return stored?.value;
  }
}

function sameDecision(a: Explanation, b: Explanation): boolean {
  return JSON.stringify({ ...a, decidedAtMs: 0 }) === JSON.stringify({ ...b, decidedAtMs: 0 });
}
