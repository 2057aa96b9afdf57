/**
 * A request id's job id, claimed across the request registers (see tally.ts for the rule, README "Submitting").
 *
 * With one register this is the create-then-read of one KV key. With three (a store of 3 replicas), the claimant
 * writes its record to all three at once and answers as soon as the records it has seen decide: two registers
 * whose Raft leaders are alive decide without waiting for the third, so the death of any one server (whose
 * registers' Raft groups elect for 4–9 s in nats-server 2.9) no longer stalls submissions that carry a request
 * id. The leader spread keeps the three registers' leaders on different servers. A register that answers with a
 * store error is retried until the claim is decided or `deadlineMs` has passed; with one register there is no
 * retry (the error is the answer, as before the quorum).
 */
import type { TypedKv } from "@capa/bus";
import { ConflictError } from "@capa/domain";
import type { RequestRecord } from "../store/records.js";
import { decideRequest, type RegisterView } from "./tally.js";

/** Where a claimant saw the request's record: what `forget` deletes (CAS on the revision). */
export interface RecordAt {
  register: number;
  revision: number;
}

export interface Claim {
  /** The request's record: the claimant's own, or the one another submission of the request id holds. */
  record: RequestRecord;
  /** True when `record` is the claimant's own. */
  mine: boolean;
  at: RecordAt[];
  /** How many registers were known when the claim was decided. */
  known: number;
}

/** A claim once every register's attempt has ended (after its answer: an attempt still in flight is not waited for). */
export interface SettledClaim {
  claim: Claim | undefined;
  /** Registers whose attempt ended in a store error: without a Raft leader, or unreachable. */
  failed: number;
}

export interface RequestClaimsOptions {
  /** How long a register's store errors are retried (default 10 s with several registers, 0 with one). */
  deadlineMs?: number;
  retryMs?: number;
  /** Each claim once all its registers' attempts have ended (metrics). */
  onSettled?: (settled: SettledClaim) => void;
  now?: () => number;
}

const MAX_REREADS = 10;

export class RequestClaims {
  private readonly deadlineMs: number;
  private readonly retryMs: number;
  private readonly now: () => number;

  constructor(
    readonly registers: readonly TypedKv<RequestRecord>[],
    private readonly options: RequestClaimsOptions = {},
  ) {
    if (registers.length === 0) throw new Error("RequestClaims needs at least one register");
    this.deadlineMs = options.deadlineMs ?? (registers.length > 1 ? 10_000 : 0);
    this.retryMs = options.retryMs ?? 250;
    this.now = options.now ?? Date.now;
  }

  /**
   * Claims `key` for `mine`, or finds the record the request id already has. Rejects with the last store error
   * when the registers that answered cannot decide (too many of them failing until the deadline).
   */
  claim(key: string, mine: RequestRecord): Promise<Claim> {
    const n = this.registers.length;
    const views: RegisterView[] = new Array(n).fill(undefined);
    const revisions: number[] = new Array(n).fill(0);
    const deadline = this.now() + this.deadlineMs;
    let done = false;
    let decided: Claim | undefined;
    return new Promise<Claim>((resolve, reject) => {
      let settled = 0;
      let failed = 0;
      let lastErr: unknown;
      const decide = () => {
        if (done) return;
        const record = decideRequest(views);
        if (!record) return;
        done = true;
        const at: RecordAt[] = [];
        for (let i = 0; i < n; i++)
          if (views[i]?.jobId === record.jobId) at.push({ register: i, revision: revisions[i]! });
        decided = { record, mine: record.jobId === mine.jobId, at, known: views.filter(Boolean).length };
        resolve(decided);
      };
      for (let i = 0; i < n; i++)
        this.settle(i, key, mine, deadline, () => done)
          .then(
            (seen) => {
              views[i] = seen.record;
              revisions[i] = seen.revision;
              decide();
            },
            (err) => {
              lastErr = err;
              failed++;
            },
          )
          .finally(() => {
            if (++settled < n) return;
            if (!done) {
              done = true;
              reject(lastErr);
            }
            this.options.onSettled?.({ claim: decided, failed });
          });
    });
  }

  /** What register `i` holds for `key` once this claimant's create was answered: its own record, or another's. */
  private async settle(
    i: number,
    key: string,
    mine: RequestRecord,
    deadline: number,
    decided: () => boolean,
  ): Promise<{ record: RequestRecord; revision: number }> {
    const register = this.registers[i]!;
    let rereads = 0;
    for (;;) {
      try {
        try {
          return { record: mine, revision: await register.create(key, mine) };
        } catch (err) {
          if (!(err instanceof ConflictError)) throw err;
        }
        // Read from the stream leader: after a conflict a follower's direct get may still be behind.
        const held = await register.getLatest(key);
        if (held) return { record: held.value, revision: held.revision };
        // Deleted meanwhile (a refused first attempt freed the request id): create afresh.
        if (++rereads >= MAX_REREADS) throw new ConflictError("request_id: too many concurrent submissions; retry");
      } catch (err) {
        if (err instanceof ConflictError || decided() || this.now() >= deadline) throw err;
        await new Promise((r) => setTimeout(r, this.retryMs));
        if (decided()) throw err;
      }
    }
  }

  /**
   * Frees the request id a refused submission held (each register where the claim saw the record, if still at
   * that revision). Best effort: a register that changed since (a concurrent retry owns it) or does not answer
   * keeps its record, and the next claim decides around it.
   */
  async forget(key: string, claim: Claim): Promise<void> {
    await Promise.all(
      claim.at.map(({ register, revision }) =>
        this.registers[register]!.kv.delete(key, { previousSeq: revision }).catch(() => undefined),
      ),
    );
  }

  /**
   * Retention: removes `key` from every register while the request's record names `jobId` (so a request id used
   * again since keeps its new job), the losers' records of concurrent duplicates included: left behind, they would
   * take part in the next claim of the request id and could refuse its reuse with another spec. CAS on the
   * revisions read; a register that does not answer keeps its copy.
   */
  async purge(key: string, jobId: string): Promise<void> {
    const held = await Promise.all(this.registers.map((r) => r.get(key).catch(() => undefined)));
    if (decideRequest(held.map((h) => h?.value))?.jobId !== jobId) return;
    await Promise.all(
      held.map((h, i) => (h ? this.registers[i]!.purgeAt(key, h.revision).catch(() => false) : undefined)),
    );
  }
}
