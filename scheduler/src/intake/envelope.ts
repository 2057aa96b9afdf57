/**
 * The intake's messages, each a JSON envelope on the job's own subject (`capa.v1.intake.<stream>.<jobId>`):
 * - a pending submission: the job in its first state (protobuf, exactly what the normal path would write) and
 *   the digest of its normalised spec (the request record's dedup key);
 * - a cancel intent (`kind: "cancel"`): CancelJob on a job that is acknowledged but not written yet, published to
 *   the stream holding the job's submission, after it, so the materialiser meets the submission first.
 * A submission has no `kind` (the form written before cancel intents existed, still read as one).
 */
import { decode, encode } from "@capa/bus";
import type { Job } from "@capa/domain";

export interface PendingSubmission {
  job: Job;
  specDigest: string;
}

/** A cancel accepted for an acknowledged job not written yet: applied by the materialiser, never dropped. */
export interface CancelIntent {
  jobId: string;
  /** The job's own tenant (from its submission, never the caller's claim): checked again where it is applied. */
  tenant: string;
  reason: string;
  /** When it was accepted: the job's finish time when it is written cancelled. */
  atMs: number;
}

export type IntakeEntry =
  | { kind: "submission"; submission: PendingSubmission }
  | { kind: "cancel"; cancel: CancelIntent };

interface SubmissionEnvelope {
  v: 1;
  kind?: undefined;
  specDigest: string;
  job: string;
}

interface CancelEnvelope {
  v: 1;
  kind: "cancel";
  jobId: string;
  tenant: string;
  reason: string;
  atMs: number;
}

const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

export function encodePending(p: PendingSubmission): Uint8Array {
  const env: SubmissionEnvelope = {
    v: 1,
    specDigest: p.specDigest,
    job: Buffer.from(encode.job(p.job)).toString("base64"),
  };
  return json(env);
}

export function encodeCancel(c: CancelIntent): Uint8Array {
  const env: CancelEnvelope = {
    v: 1,
    kind: "cancel",
    jobId: c.jobId,
    tenant: c.tenant,
    reason: c.reason,
    atMs: c.atMs,
  };
  return json(env);
}

/** Any intake message; throws on one that is neither form (the followers log and skip it). */
export function decodeIntake(data: Uint8Array): IntakeEntry {
  const env = JSON.parse(new TextDecoder().decode(data)) as SubmissionEnvelope | CancelEnvelope;
  if (env === null || typeof env !== "object" || env.v !== 1) throw new Error("not an intake envelope (v1)");
  if (env.kind === "cancel") {
    const { jobId, tenant, reason, atMs } = env;
    if (typeof jobId !== "string" || typeof tenant !== "string" || typeof reason !== "string" || !Number.isFinite(atMs))
      throw new Error("not an intake cancel intent (v1)");
    return { kind: "cancel", cancel: { jobId, tenant, reason, atMs } };
  }
  if (env.kind !== undefined || typeof env.specDigest !== "string" || typeof env.job !== "string")
    throw new Error("not an intake envelope (v1)");
  return {
    kind: "submission",
    submission: { specDigest: env.specDigest, job: decode.job(Buffer.from(env.job, "base64")) },
  };
}

/** A pending submission; throws on anything else (a cancel intent included). */
export function decodePending(data: Uint8Array): PendingSubmission {
  const entry = decodeIntake(data);
  if (entry.kind !== "submission") throw new Error("not an intake submission");
  return entry.submission;
}
