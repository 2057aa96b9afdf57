import { describe, expect, it } from "vitest";
import { AttackTable } from "./attack-table.js";

describe("AttackTable", () => {
  it("counts each outcome per attack and totals the failures", () => {
    const t = new AttackTable();
    t.record("forged status", "denied");
    t.record("forged status", "denied");
    t.record("read logs", "leaked");
    t.record("set policy", "allowed");
    expect(t.list()).toEqual([
      { attack: "forged status", tried: 2, denied: 2, leaked: 0, unexpectedAllows: 0 },
      { attack: "read logs", tried: 1, denied: 0, leaked: 1, unexpectedAllows: 0 },
      { attack: "set policy", tried: 1, denied: 0, leaked: 0, unexpectedAllows: 1 },
    ]);
    expect(t.failures()).toBe(2);
  });

  it("renders a header, one line per attack and a total line", () => {
    const t = new AttackTable();
    t.record("forged status", "denied");
    const lines = t.render("NATS attacks").split("\n");
    expect(lines[0]).toBe("NATS attacks");
    expect(lines[1]).toMatch(/^ATTACK\s+TRIED\s+DENIED\s+LEAKED\s+UNEXPECTED ALLOWS$/);
    expect(lines[2]).toMatch(/^forged status\s+1\s+1\s+0\s+0$/);
    expect(lines[3]).toMatch(/^TOTAL\s+1\s+1\s+0\s+0$/);
  });
});
