/**
 * The in-memory key table the gRPC edge checks every call against: no store read per call. The scheduler fills it
 * from the key bucket and keeps it current with a watch (`put`/`remove`); revoking a key removes it here at once.
 */
import { UnauthenticatedError } from "./errors.js";
import { type KeyRecord, parseToken, secretMatches } from "./keys.js";
import { type Principal, principalOf } from "./principal.js";

const BEARER = /^Bearer\s+(\S+)\s*$/i;

export class KeyTable {
  private readonly keys = new Map<string, { record: KeyRecord; principal: Principal }>();

  put(record: KeyRecord): void {
    this.keys.set(record.keyId, { record, principal: principalOf(record) });
  }

  remove(keyId: string): void {
    this.keys.delete(keyId);
  }

  get(keyId: string): KeyRecord | undefined {
    return this.keys.get(keyId)?.record;
  }

  list(): KeyRecord[] {
    return [...this.keys.values()].map((k) => k.record);
  }

  get size(): number {
    return this.keys.size;
  }

  /**
   * The principal of an `authorization` metadata value (`Bearer capa_…`). Every failure is UNAUTHENTICATED with
   * a reason that names no secret: missing, not a bearer token, malformed, unknown or revoked.
   */
  authenticate(authorization: string | undefined): Principal {
    if (authorization === undefined || authorization === "")
      throw new UnauthenticatedError("no credential: send authorization: Bearer <capa API key>");
    const m = BEARER.exec(authorization);
    if (!m) throw new UnauthenticatedError("the authorization metadata must be 'Bearer <capa API key>'");
    const { keyId, secret } = parseToken(m[1]!);
    const entry = this.keys.get(keyId);
    if (!entry || !secretMatches(secret, entry.record.secretHash))
      throw new UnauthenticatedError(`unknown or revoked key ${keyId}`);
    return entry.principal;
  }
}
