/**
 * The last plan's explanation per job: an in-memory LRU for ExplainJob, persisted to KV
 * `capa_jobs/explain.<jobId>` so it survives a restart and any replica can answer. Re-plans of a waiting job
 * produce the same explanation again and again; it is written only when it differs (ignoring the time).
 * Writes are CAS (read-modify-write on the stored revision): an explanation never replaces a newer one, e.g. one
 * written by a leader that took over while this replica still finished a plan. The revision this replica last
 * wrote or read is kept with the cached explanation, so a write normally costs no read: a job's first one is a CAS
 * create, a later one a CAS update on the kept revision, and only a conflict (someone else wrote) reads the key
 * and decides again on what is stored.
 * Job records are never deleted from `capa_jobs` (final jobs stay, see README "KV layout"), so neither is the
 * explanation key; if job removal is ever added, it must delete `explain.<jobId>` with the job.
 */
import type { TypedKv } from "@capa/bus";
import { ConflictError } from "@capa/domain";
import { LRUCache } from "lru-cache";
import type { Logger } from "pino";
import { EXPLAIN_PREFIX } from "../store/buckets.js";
import type { Explanation } from "./engine.js";

interface Cached {
  explanation: Explanation;
  /** The key's revision when this replica last wrote or read it; undefined = not known. */
  revision?: number;
}

export class ExplanationStore {
  private readonly cache: LRUCache<string, Cached>;

  constructor(
    private readonly kv: TypedKv<Explanation>,
    private readonly logger: Logger,
    max = 10_000,
  ) {
    this.cache = new LRUCache({ max });
  }

  async record(explanation: Explanation): Promise<void> {
    const { jobId } = explanation;
    const previous = this.cache.get(jobId);
    // Another record of this job in flight leaves the revision unknown until it is answered (then: read first).
    this.cache.set(jobId, { explanation });
    if (previous && sameDecision(previous.explanation, explanation)) {
      // Not written (same decision): the stored revision is still the one held.
      this.cache.set(jobId, { explanation, revision: previous.revision });
      return;
    }
    const key = EXPLAIN_PREFIX + jobId;
    try {
      let revision: number | undefined;
      // Without a read: a CAS create for a job never explained here, an update on the revision this replica holds.
      if (!previous || previous.revision !== undefined) {
        try {
          revision = previous
            ? await this.kv.update(key, explanation, previous.revision!)
            : await this.kv.create(key, explanation);
        } catch (err) {
          if (!(err instanceof ConflictError)) throw err;
        }
      }
      // Someone else wrote it (or the revision is unknown): decided on what is stored, never over a newer one.
      if (revision === undefined) {
        const entry = await this.kv.mutate(key, (stored) =>
          stored && (stored.decidedAtMs > explanation.decidedAtMs || sameDecision(stored, explanation))
            ? undefined
            : explanation,
        );
        // Kept only when it holds ours: a newer one stored by someone else is decided on a read next time.
        if (entry?.value === explanation) revision = entry.revision;
      }
      if (this.cache.get(jobId)?.explanation === explanation) this.cache.set(jobId, { explanation, revision });
    } catch (err) {
      this.logger.warn({ err, jobId }, "could not persist an explanation");
    }
  }

  async get(jobId: string): Promise<Explanation | undefined> {
    const cached = this.cache.get(jobId);
    if (cached) return cached.explanation;
    const stored = await this.kv.get(EXPLAIN_PREFIX + jobId);
    if (stored) this.cache.set(jobId, { explanation: stored.value, revision: stored.revision });
    return stored?.value;
  }
}

function sameDecision(a: Explanation, b: Explanation): boolean {
  return JSON.stringify({ ...a, decidedAtMs: 0 }) === JSON.stringify({ ...b, decidedAtMs: 0 });
}
