import { describe, expect, it } from "vitest";
import { decideLease, mayAct, released } from "./lease.js";

describe("leader lease rules (injected clock)", () => {
  const ttl = 1000;

  it("acquires a free lease at term 1", () => {
    expect(decideLease(undefined, "s1", 100, ttl)).toEqual({
      kind: "acquire",
      record: { holder: "s1", term: 1, expiresAtMs: 1100, acquiredAtMs: 100 },
    });
  });

  it("renews its own live lease without changing the term", () => {
    const held = { holder: "s1", term: 3, expiresAtMs: 1100, acquiredAtMs: 100 };
    expect(decideLease(held, "s1", 600, ttl)).toEqual({ kind: "renew", record: { ...held, expiresAtMs: 1600 } });
  });

  it("follows a live lease held by someone else", () => {
    const held = { holder: "s1", term: 3, expiresAtMs: 1100, acquiredAtMs: 100 };
    expect(decideLease(held, "s2", 1099, ttl)).toEqual({ kind: "follow", holder: "s1", expiresAtMs: 1100 });
  });

  it("takes over an expired lease with the next term", () => {
    const held = { holder: "s1", term: 3, expiresAtMs: 1100, acquiredAtMs: 100 };
    expect(decideLease(held, "s2", 1100, ttl)).toEqual({
      kind: "takeover",
      record: { holder: "s2", term: 4, expiresAtMs: 2100, acquiredAtMs: 1100 },
    });
  });

  it("re-takes its own expired lease as a new term (it may have been demoted meanwhile)", () => {
    const held = { holder: "s1", term: 3, expiresAtMs: 1100, acquiredAtMs: 100 };
    expect(decideLease(held, "s1", 1200, ttl)).toMatchObject({ kind: "takeover", record: { term: 4 } });
  });

  it("stops acting a margin before the stored expiry", () => {
    const held = { holder: "s1", term: 1, expiresAtMs: 1000, acquiredAtMs: 0 };
    expect(mayAct(held, "s1", 799, 200)).toBe(true);
    expect(mayAct(held, "s1", 800, 200)).toBe(false);
    expect(mayAct(held, "s2", 0, 200)).toBe(false);
    expect(mayAct(undefined, "s1", 0, 200)).toBe(false);
  });

  it("releases by expiring now, so a successor takes over at once", () => {
    const held = { holder: "s1", term: 2, expiresAtMs: 5000, acquiredAtMs: 0 };
    const r = released(held, 1234);
    expect(r.expiresAtMs).toBe(1234);
    expect(decideLease(r, "s2", 1234, ttl).kind).toBe("takeover");
  });
});
