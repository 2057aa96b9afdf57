/**
 * When a submission leaves the normal path for the intake (pure; the table test is decision.test.ts).
 *
 * The normal path (request record, admission, job record) stays first and keeps its answers: a refusal, a
 * validation error or a deduplicated job is answered as before. The fallback is taken only when the normal path
 * is stuck on the store — it has not finished within the stall budget, or it failed with a store error (no
 * responders, a timeout: a stream without a Raft leader) — and only while the submission's job id is known: no
 * request id, or its claim was decided (scheduler/src/requests: the record a majority of the request registers
 * hold). While the claim is undecided a concurrent duplicate may win the request id, so the submission waits for
 * the normal path instead, and one request id is never acknowledged with two job ids. With three registers one
 * leaderless register does not keep a claim undecided; with one (a store below 3 replicas) a stall on
 * `capa_requests` still stalls submissions that carry a request id, until its Raft group elects a leader.
 */
import { CapaError } from "@capa/domain";

export type NormalOutcome<T> = { kind: "pending" } | { kind: "answered"; result: T } | { kind: "failed"; err: unknown };

export type SubmitDecision = "answer" | "fall back" | "wait";

/** A store failure (NATS no responders, timeout, connection): not one of capa's own answers. */
export function isStoreFailure(err: unknown): boolean {
  return !(err instanceof CapaError);
}

export function decideSubmit<T>(outcome: NormalOutcome<T>, jobIdKnown: boolean): SubmitDecision {
  switch (outcome.kind) {
    case "answered":
      return "answer";
    case "failed":
      return isStoreFailure(outcome.err) && jobIdKnown ? "fall back" : "answer";
    case "pending":
      return jobIdKnown ? "fall back" : "wait";
  }
}
