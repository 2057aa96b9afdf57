/**
 * Page tokens for the List RPCs (AIP-158 style): opaque to clients, base64url of a small JSON document holding
 * where the next page starts and a fingerprint of the request's filter, so a token replayed with another filter
 * is INVALID_ARGUMENT instead of a silently wrong page. Listings that only grow at one end (jobs, agents) page by
 * the last item's sort key (stable while items are added); the order book and receipts page by offset.
 */
import { createHash } from "node:crypto";
import { ValidationError } from "@capa/domain";

type Key = readonly (string | number)[];

interface Token {
  /** Filter fingerprint. */
  f: string;
  /** Sort key of the last item of the previous page (keyset paging). */
  k?: Key;
  /** Items already returned (offset paging). */
  o?: number;
}

export interface Page<T> {
  items: T[];
  /** "" on the last page. */
  nextPageToken: string;
}

const MAX_TOKEN_LENGTH = 1024;

function fingerprint(filter: unknown): string {
  return createHash("sha256").update(JSON.stringify(filter)).digest("base64url").slice(0, 16);
}

function encode(token: Token): string {
  return Buffer.from(JSON.stringify(token)).toString("base64url");
}

function decode(pageToken: string, filter: unknown, field: string): Token | undefined {
  if (pageToken === "") return undefined;
  const bad = (why: string) => new ValidationError([{ field, message: why }]);
  if (pageToken.length > MAX_TOKEN_LENGTH) throw bad("is not a page token of this listing");
  let token: Token;
  try {
    token = JSON.parse(Buffer.from(pageToken, "base64url").toString("utf8")) as Token;
  } catch {
    throw bad("is not a page token of this listing");
  }
  if (typeof token !== "object" || token === null || typeof token.f !== "string")
    throw bad("is not a page token of this listing");
  if (token.f !== fingerprint(filter)) throw bad("was issued for a request with other filters; start again without it");
  return token;
}

/**
 * Keyset paging over items sorted by `key` (ascending in `compare`'s order): the page after the token's key.
 * `compare(a, b)` orders two keys like the listing's sort.
 */
export function pageByKey<T>(
  sorted: readonly T[],
  opts: {
    pageToken: string;
    size: number;
    filter: unknown;
    key: (item: T) => Key;
    compare: (a: Key, b: Key) => number;
    field?: string;
  },
): Page<T> {
  const token = decode(opts.pageToken, opts.filter, opts.field ?? "page_token");
  const after = token?.k;
  if (token && (!Array.isArray(after) || after.some((k) => typeof k !== "string" && typeof k !== "number")))
    throw new ValidationError([{ field: opts.field ?? "page_token", message: "is not a page token of this listing" }]);
  const rest = after ? sorted.filter((item) => opts.compare(opts.key(item), after) > 0) : sorted;
  const items = opts.size > 0 ? rest.slice(0, opts.size) : [...rest];
  const last = items[items.length - 1];
  const more = rest.length > items.length && last !== undefined;
  return { items, nextPageToken: more ? encode({ f: fingerprint(opts.filter), k: opts.key(last) }) : "" };
}

/** Largest page any List RPC answers. */
export const MAX_PAGE_SIZE = 1000;

/** A request's `limit` as a page size: 0 = everything (one page), above MAX_PAGE_SIZE refused. */
export function pageSize(limit: number, field = "limit"): number {
  if (!Number.isInteger(limit) || limit < 0 || limit > MAX_PAGE_SIZE)
    throw new ValidationError([{ field, message: `must be an integer in 0..${MAX_PAGE_SIZE}` }]);
  return limit;
}

/** Lexicographic order of two sort keys (numbers numerically, strings by code unit). */
export function compareKeys(a: Key, b: Key): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x === y) continue;
    if (typeof x === "number" && typeof y === "number") return x - y;
    return String(x) < String(y) ? -1 : 1;
  }
  return a.length - b.length;
}

/**
 * Offset paging: `fetch(n)` returns at least the first n items of the listing (or all of them; n = 0: all).
 * `size` 0 = everything from the token's offset on, one page.
 */
export async function pageByOffset<T>(
  fetch: (count: number) => readonly T[] | Promise<readonly T[]>,
  opts: { pageToken: string; size: number; filter: unknown; field?: string },
): Promise<Page<T>> {
  const token = decode(opts.pageToken, opts.filter, opts.field ?? "page_token");
  const offset = token?.o ?? 0;
  if (!Number.isSafeInteger(offset) || offset < 0)
    throw new ValidationError([{ field: opts.field ?? "page_token", message: "is not a page token of this listing" }]);
  const all = await fetch(opts.size > 0 ? offset + opts.size + 1 : 0);
  const items = opts.size > 0 ? all.slice(offset, offset + opts.size) : all.slice(offset);
  const more = all.length > offset + items.length;
  return { items, nextPageToken: more ? encode({ f: fingerprint(opts.filter), o: offset + items.length }) : "" };
}
