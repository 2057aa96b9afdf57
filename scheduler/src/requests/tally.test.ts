import { describe, expect, it } from "vitest";
import type { RequestRecord } from "../store/records.js";
import { decideRequest, majorityOf, type RegisterView } from "./tally.js";

const rec = (jobId: string): RequestRecord => ({
  jobId,
  tenant: "acme",
  requestId: "r1",
  specDigest: "d",
  createdAtMs: 1_000,
});
const A = rec("ja");
const B = rec("jb");
const C = rec("jc");
const _ = undefined;

describe("decideRequest", () => {
  it.each<[string, RegisterView[], string | undefined]>([
    ["one register: what it holds", [B], "jb"],
    ["one register not known", [_], undefined],
    ["two of three agree", [A, A, _], "ja"],
    ["two of three agree, the third differs", [B, A, A], "ja"],
    ["two of three agree, without register 0", [_, C, C], "jc"],
    ["one of three known", [A, _, _], undefined],
    ["a split with a register not known: wait for it", [A, B, _], undefined],
    ["a split with register 0 not known", [_, B, A], undefined],
    ["all three known, one each: the smallest job id", [C, A, B], "ja"],
    ["all three known, one each, another order", [B, C, A], "ja"],
    ["all three agree", [B, B, B], "jb"],
  ])("%s", (_name, views, decided) => {
    expect(decideRequest(views)?.jobId).toBe(decided);
  });

  it("majorities", () => {
    expect([1, 2, 3, 5].map(majorityOf)).toEqual([1, 2, 2, 3]);
  });
});
