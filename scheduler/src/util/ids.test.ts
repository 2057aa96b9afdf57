import { describe, expect, it } from "vitest";
import { isJobId, newJobId, requestKey, seedFor, specDigest } from "./ids.js";

describe("ids and dedupe keys", () => {
  it("mints token-safe, distinct job ids", () => {
    const ids = new Set(Array.from({ length: 1000 }, newJobId));
    expect(ids.size).toBe(1000);
    for (const id of ids) {
      expect(isJobId(id)).toBe(true);
      expect(id).toMatch(/^j[a-z2-7]{16}$/);
    }
  });

  it("keys a request by tenant and a hash of the request id", () => {
    const key = requestKey("acme", "retry-1");
    expect(key).toMatch(/^acme\.[0-9a-f]{40}$/);
    expect(requestKey("acme", "retry-1")).toBe(key);
    expect(requestKey("acme", "retry-2")).not.toBe(key);
    expect(requestKey("other", "retry-1")).not.toBe(key);
    // No ambiguity from concatenation: ("ab", "c") vs ("a", "bc").
    expect(requestKey("ab", "c").split(".")[1]).not.toBe(requestKey("a", "bc").split(".")[1]);
    // Any request id maps to a valid KV key.
    expect(requestKey("acme", "a:b.c/d e".repeat(10))).toMatch(/^[a-z0-9_-]+\.[0-9a-f]{40}$/);
  });

  it("digests specs independently of key order", () => {
    expect(specDigest({ a: 1, b: { c: [1, 2] } })).toBe(specDigest({ b: { c: [1, 2] }, a: 1 }));
    expect(specDigest({ a: 1 })).not.toBe(specDigest({ a: 2 }));
  });

  it("seeds deterministically per job", () => {
    expect(seedFor("j1")).toBe(seedFor("j1"));
    expect(seedFor("j1")).not.toBe(seedFor("j2"));
    expect(Number.isInteger(seedFor("j1"))).toBe(true);
  });
});
