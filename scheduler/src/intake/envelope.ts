/**
 * One pending submission as an intake message: the job in its first state (protobuf, exactly what the normal path
 * would write) and the digest of its normalised spec (the request record's dedup key), in a JSON envelope.
 */
import { decode, encode } from "@capa/bus";
import type { Job } from "@capa/domain";

export interface PendingSubmission {
  job: Job;
  specDigest: string;
}

interface Envelope {
  v: 1;
  specDigest: string;
  job: string;
}

export function encodePending(p: PendingSubmission): Uint8Array {
  const env: Envelope = { v: 1, specDigest: p.specDigest, job: Buffer.from(encode.job(p.job)).toString("base64") };
  return new TextEncoder().encode(JSON.stringify(env));
}

export function decodePending(data: Uint8Array): PendingSubmission {
  const env = JSON.parse(new TextDecoder().decode(data)) as Envelope;
  if (env.v !== 1 || typeof env.specDigest !== "string" || typeof env.job !== "string")
    throw new Error("not an intake envelope (v1)");
  return { specDigest: env.specDigest, job: decode.job(Buffer.from(env.job, "base64")) };
}
