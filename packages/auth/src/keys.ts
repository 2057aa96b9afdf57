/**
 * API keys: `capa_<keyId>_<secret>`. The key id (16 hex digits) is public and names the stored record; the secret
 * (32 random bytes, base64url) is shown once, when the key is made, and only its SHA-256 is stored. Opaque keys
 * rather than signed tokens so that a revocation takes effect at once on every replica (the record is gone from the
 * cache), with no expiry window to wait out; SHA-256 rather than a slow KDF because the secret has 256 bits of
 * entropy (nothing to brute-force) and every RPC checks it.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { FieldViolation } from "@capa/domain";
import { MalformedTokenError } from "./errors.js";
import type { Role } from "./roles.js";

export const TOKEN_PREFIX = "capa_";
const TOKEN_PATTERN = /^capa_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
const KEY_ID_PATTERN = /^[0-9a-f]{16}$/;
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
const SUBJECT_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const PROVIDER_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** What the store keeps per key: never the secret, only its hash. */
export interface KeyRecord {
  keyId: string;
  /** SHA-256 of the secret, hex. */
  secretHash: string;
  role: Role;
  /** The tenant of a tenant key ("" otherwise). */
  tenant: string;
  /** The provider of a provider key ("" otherwise). */
  provider: string;
  /** A human name ("alice", "ci-bot"); shown in audit entries. */
  name: string;
  createdAtMs: number;
  /** Key id of whoever made it ("bootstrap" for the first admin key). */
  createdBy: string;
}

export interface ParsedToken {
  keyId: string;
  secret: string;
}

export function parseToken(token: string): ParsedToken {
  const m = TOKEN_PATTERN.exec(token);
  if (!m) throw new MalformedTokenError("the credential is not a capa API key (capa_<key id>_<secret>)");
  return { keyId: m[1]!, secret: m[2]! };
}

export function hashSecret(secret: string): string {
  return createHash("sha256").update(secret).digest("hex");
}

/** Constant-time comparison of a presented secret with a stored hash. */
export function secretMatches(secret: string, secretHash: string): boolean {
  const a = Buffer.from(hashSecret(secret), "hex");
  const b = Buffer.from(secretHash, "hex");
  return a.length === b.length && timingSafeEqual(a, b);
}

export interface NewKey {
  token: string;
  record: KeyRecord;
}

export interface NewKeyInput {
  role: Role;
  name: string;
  tenant?: string;
  provider?: string;
  createdBy: string;
  nowMs: number;
}

/** Mints a key; `random` is injectable so tests can make fixed keys. */
export function mintKey(input: NewKeyInput, random: (n: number) => Buffer = randomBytes): NewKey {
  const keyId = random(8).toString("hex");
  const secret = random(32).toString("base64url");
  return {
    token: `${TOKEN_PREFIX}${keyId}_${secret}`,
    record: {
      keyId,
      secretHash: hashSecret(secret),
      role: input.role,
      tenant: input.role === "tenant" ? (input.tenant ?? "") : "",
      provider: input.role === "provider" ? (input.provider ?? "") : "",
      name: input.name,
      createdAtMs: input.nowMs,
      createdBy: input.createdBy,
    },
  };
}

/** Field checks for a new key's request (role, name, tenant or provider). */
export function newKeyViolations(input: {
  role: string;
  name: string;
  tenant: string;
  provider: string;
}): FieldViolation[] {
  const v: FieldViolation[] = [];
  if (!["tenant", "provider", "operator", "admin"].includes(input.role))
    v.push({ field: "role", message: "must be tenant, provider, operator or admin" });
  if (!NAME_PATTERN.test(input.name))
    v.push({ field: "name", message: "must be 1-64 characters of letters, digits, . _ @ -, starting alphanumeric" });
  if (input.role === "tenant" && !SUBJECT_PATTERN.test(input.tenant))
    v.push({ field: "tenant", message: "is required for a tenant key (lower-case letters, digits, _ -)" });
  if (input.role !== "tenant" && input.tenant !== "") v.push({ field: "tenant", message: "is only for tenant keys" });
  if (input.role === "provider" && !PROVIDER_PATTERN.test(input.provider))
    v.push({
      field: "provider",
      message: "is required for a provider key (letters, digits, . _ -; as agents advertise it)",
    });
  if (input.role !== "provider" && input.provider !== "")
    v.push({ field: "provider", message: "is only for provider keys" });
  return v;
}

export function keyIdViolations(keyId: string, field = "key_id"): FieldViolation[] {
  return KEY_ID_PATTERN.test(keyId) ? [] : [{ field, message: "must be a key id (16 hex digits)" }];
}

/** A record read back from the store, checked field by field (a garbage KV value is not a key). */
export function parseKeyRecord(value: unknown): KeyRecord | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const r = value as Record<string, unknown>;
  const str = (k: string) => (typeof r[k] === "string" ? (r[k] as string) : undefined);
  const keyId = str("keyId");
  const secretHash = str("secretHash");
  const role = str("role");
  if (!keyId || !KEY_ID_PATTERN.test(keyId) || !secretHash || !/^[0-9a-f]{64}$/.test(secretHash)) return undefined;
  if (!role || !["tenant", "provider", "operator", "admin"].includes(role)) return undefined;
  const record: KeyRecord = {
    keyId,
    secretHash,
    role: role as Role,
    tenant: str("tenant") ?? "",
    provider: str("provider") ?? "",
    name: str("name") ?? "",
    createdAtMs: typeof r.createdAtMs === "number" ? r.createdAtMs : 0,
    createdBy: str("createdBy") ?? "",
  };
  if (record.role === "tenant" && record.tenant === "") return undefined;
  if (record.role === "provider" && record.provider === "") return undefined;
  return record;
}
