/** Identifiers the scheduler mints: token-safe (one NATS subject token, one KV key token). */
import { createHash, randomFillSync } from "node:crypto";

const BASE32 = "abcdefghijklmnopqrstuvwxyz234567";

/**
 * Random bytes for ids, drawn from the CSPRNG 4 KiB at a time: one `randomBytes(16)` per id (a native call and a
 * Buffer each) showed up on the submit path; a pool refilled every 256 ids costs the same entropy, once.
 */
const pool = Buffer.alloc(4096);
let poolAt = pool.length;

/** `j` + 16 random base32 characters (80 bits). */
export function newJobId(): string {
  if (poolAt + 16 > pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  let out = "j";
  for (let i = 0; i < 16; i++) out += BASE32[pool[poolAt + i]! & 31];
  poolAt += 16;
  return out;
}

const JOB_ID = /^j[a-z2-7]{16}$/;

export function isJobId(value: string): boolean {
  return JOB_ID.test(value);
}

/**
 * KV key of a submission's idempotency record: tenant + a hash of the request id, so any request id (up to its
 * length limit, any allowed characters) maps to a valid, fixed-size key, and tenants never collide.
 */
export function requestKey(tenant: string, requestId: string): string {
  const digest = createHash("sha256").update(tenant).update("\0").update(requestId).digest("hex").slice(0, 40);
  return `${tenant}.${digest}`;
}

/** Stable 32-bit seed per job (FNV-1a), so re-planning the same job is deterministic. */
export function seedFor(jobId: string, attempt = 0): number {
  let h = 0x811c9dc5;
  const text = attempt === 0 ? jobId : `${jobId}#${attempt}`;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** Hash of a spec's canonical JSON: detects a request id reused for a different submission. */
export function specDigest(value: unknown): string {
  return createHash("sha256").update(stableJson(value)).digest("hex").slice(0, 32);
}

/**
 * Canonical JSON: object keys sorted by UTF-16 code units (the default sort of strings), `undefined` as `null`.
 * Stored request records hold digests of it, so its output must never change; it is built with plain loops
 * (no entry arrays, comparator closures or intermediate joins): it ran on every submission.
 */
function stableJson(value: unknown): string {
  if (Array.isArray(value)) {
    let out = "[";
    for (let i = 0; i < value.length; i++) out += (i === 0 ? "" : ",") + stableJson(value[i]);
    return `${out}]`;
  }
  if (value && typeof value === "object") {
    const keys = Object.keys(value).sort();
    let out = "{";
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      out += `${i === 0 ? "" : ","}${JSON.stringify(k)}:${stableJson((value as Record<string, unknown>)[k])}`;
    }
    return `${out}}`;
  }
  return JSON.stringify(value) ?? "null";
}
