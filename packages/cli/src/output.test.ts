import { describe, expect, it } from "vitest";
import { markSystemLines } from "./commands/logs.js";
import { fitWidths, renderTable } from "./format.js";
import { colourCell, namesOf, renderDocument, shouldColour, terminalWidth } from "./output.js";

describe("output habits", () => {
  it.each([
    [true, {}, true],
    [false, {}, false],
    [undefined, {}, false],
    [true, { NO_COLOR: "1" }, false],
    [true, { NO_COLOR: "" }, true],
    [true, { TERM: "dumb" }, false],
  ])("colour on a TTY=%s with %j: %s", (tty, env, expected) => {
    expect(shouldColour(tty, env as NodeJS.ProcessEnv)).toBe(expected);
  });

  it("takes the width from $COLUMNS, else the terminal, never for a pipe", () => {
    expect(terminalWidth(false, undefined, { COLUMNS: "90" })).toBe(90);
    expect(terminalWidth(true, 120, {})).toBe(120);
    expect(terminalWidth(false, 120, {})).toBeUndefined();
    expect(terminalWidth(true, 120, { COLUMNS: "x" })).toBe(120);
  });

  it("narrows the widest columns first, never below 6, and cuts cells with …", () => {
    expect(fitWidths([10, 30, 8], 40)).toEqual([10, 18, 8]); // 10 + 18 + 8 + two 2-space separators = 40
    expect(fitWidths([10, 30, 8], undefined)).toEqual([10, 30, 8]);
    expect(fitWidths([7, 7], 5)).toEqual([6, 6]);
    const table = renderTable(["ID", "REASON"], [["j1", "waiting for capacity in every region"]], { maxWidth: 20 });
    expect(table.split("\n").map((l) => l.length <= 20)).toEqual([true, true]);
    expect(table).toContain("…");
  });

  it("colours only state cells, keeping their padding", () => {
    expect(colourCell("RUNNING  ", true)).toBe("\u001b[32mRUNNING  \u001b[0m");
    expect(colourCell("eu-west", true)).toBe("eu-west");
    expect(colourCell("RUNNING", false)).toBe("RUNNING");
  });

  it("names what a document lists, for -o name", () => {
    expect(namesOf({ jobs: [{ id: "j1" }, { id: "j2" }] })).toEqual(["job/j1", "job/j2"]);
    expect(namesOf({ agents: [{ agentId: "a1" }] })).toEqual(["agent/a1"]);
    expect(namesOf({ receipts: [{ receiptId: "rcpt:t:1" }] })).toEqual(["receipt/rcpt:t:1"]);
    expect(namesOf({ offers: [{ region: "eu-west", gpuModel: "H100-80GB" }] })).toEqual(["offer/eu-west/H100-80GB"]);
    expect(namesOf({ job: { id: "j9" }, deduplicated: false })).toEqual(["job/j9"]);
    expect(renderDocument({ a: 1, b: [1n] }, "yaml")).toBe("a: 1\nb:\n  - 1");
  });

  it("marks capa's own log lines once", () => {
    expect(markSystemLines("[capa] cannot start x\nrestarting\n")).toBe("[capa] cannot start x\n[capa] restarting\n");
    expect(markSystemLines("no newline")).toBe("[capa] no newline\n");
  });
});
