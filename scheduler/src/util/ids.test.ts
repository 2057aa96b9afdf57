import { createHash } from "node:crypto";
import { defaultJobSpec } from "@capa/domain";
import fc from "fast-check";
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

  it("keeps the digest stored request records hold (a change would refuse every retry across an upgrade)", () => {
    const spec = {
      ...defaultJobSpec({ kind: "training", replicas: 2, gpusPerReplica: 4 }),
      template: { command: ["python", "train.py", "--lr=3e-4"], env: { B: "2", A: 'ü"x' }, workingDir: "/w" },
      regions: ["eu-west", "us-east"],
      weird: { é: null, z: undefined, n: -0.5, big: 1e21, t: true },
    };
    // Pinned from the implementation before it was rewritten with loops; any JSON value digests as it did.
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const before = createHash("sha256").update(referenceJson(v)).digest("hex").slice(0, 32);
        expect(specDigest(v)).toBe(before);
      }),
    );
    expect(specDigest({ ...spec, template: { ...spec.template, killGraceSeconds: 30 } })).toBe(
      "6addf7e3f521beb9aa8083fc1a00c3f4",
    );
  });

  it("seeds deterministically per job", () => {
    expect(seedFor("j1")).toBe(seedFor("j1"));
    expect(seedFor("j1")).not.toBe(seedFor("j2"));
    expect(Number.isInteger(seedFor("j1"))).toBe(true);
  });
});

/** The canonical JSON as first written (entries sorted with a comparator, mapped and joined). */
function referenceJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(referenceJson).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${referenceJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}
