import { ConflictError, ValidationError } from "@capa/domain";
import { BudgetExceededError } from "@capa/market";
import { describe, expect, it } from "vitest";
import { AlreadyExistsError } from "../jobs/errors.js";
import { decideSubmit, isStoreFailure, type NormalOutcome } from "./decision.js";
import { streamToStepDown } from "./leader-spread.js";

class NoResponders extends Error {}
const storeError = new NoResponders("503 no responders");
const refused = Object.create(BudgetExceededError.prototype) as Error;

describe("decideSubmit: when the intake takes a submission over", () => {
  const cases: [string, NormalOutcome<string>, boolean, ReturnType<typeof decideSubmit>][] = [
    ["answered in time", { kind: "answered", result: "job" }, true, "answer"],
    ["answered in time, id unknown", { kind: "answered", result: "job" }, false, "answer"],
    ["still running past the budget, id known", { kind: "pending" }, true, "fall back"],
    ["still running past the budget, id unknown (a record to read back)", { kind: "pending" }, false, "wait"],
    ["failed on the store (no responders), id known", { kind: "failed", err: storeError }, true, "fall back"],
    ["failed on the store, id unknown", { kind: "failed", err: storeError }, false, "answer"],
    ["refused by admission (synchronous refusal stays)", { kind: "failed", err: refused }, true, "answer"],
    ["invalid", { kind: "failed", err: new ValidationError([{ field: "spec", message: "x" }]) }, true, "answer"],
    ["request id reused for another spec", { kind: "failed", err: new AlreadyExistsError("x") }, true, "answer"],
    ["too many concurrent submissions", { kind: "failed", err: new ConflictError("x") }, true, "answer"],
  ];
  it.each(cases)("%s", (_name, outcome, known, expected) => {
    expect(decideSubmit(outcome, known)).toBe(expected);
  });

  it("counts only non-capa errors as store failures", () => {
    expect(isStoreFailure(storeError)).toBe(true);
    expect(isStoreFailure(new ConflictError("x"))).toBe(false);
    expect(isStoreFailure(refused)).toBe(false);
  });
});

describe("streamToStepDown: keep a group's leaders apart", () => {
  const s = (leader: string | undefined, ...current: string[]) => ({ leader, current });
  it.each([
    ["two intake streams on one server", [s("n1", "n2", "n3"), s("n1", "n2", "n3")], 1],
    ["apart", [s("n1", "n2"), s("n2", "n1")], undefined],
    ["a stream without a leader", [s(undefined, "n2"), s("n2", "n1")], undefined],
    ["the other without a leader", [s("n1", "n2"), s(undefined)], undefined],
    ["no leaders", [s(undefined), s(undefined)], undefined],
    ["unknown streams", [undefined, undefined], undefined],
    ["three registers, the last two on one server", [s("n1", "n2", "n3"), s("n2", "n1", "n3"), s("n2", "n1", "n3")], 2],
    ["three registers, all on one server", [s("n1", "n2", "n3"), s("n1", "n2", "n3"), s("n1", "n2", "n3")], 1],
    ["three registers apart", [s("n1", "n2", "n3"), s("n2", "n1", "n3"), s("n3", "n1", "n2")], undefined],
    // A server of three down: every current peer leads a register already, so a step-down would only move the clash.
    ["no free peer to lead", [s("n1", "n2"), s("n2", "n1"), s("n2", "n1")], undefined],
    ["the clash's free peer is not current", [s("n1", "n2"), s("n2", "n1"), s("n1", "n2")], undefined],
  ] as const)("%s", (_name, streams, expected) => {
    expect(streamToStepDown(streams)).toBe(expected);
  });
});
