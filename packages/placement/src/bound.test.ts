import { describe, expect, it } from "vitest";
import { transportationBound } from "./bound.js";

describe("transportationBound", () => {
  it("is the cheapest assignment when capacity is plentiful", () => {
    const jobs = [
      {
        units: 1,
        options: [
          { resource: "a", cost: 5 },
          { resource: "b", cost: 3 },
        ],
      },
      {
        units: 2,
        options: [
          { resource: "a", cost: 8 },
          { resource: "b", cost: 9 },
        ],
      },
    ];
    expect(
      transportationBound(
        jobs,
        new Map([
          ["a", 10],
          ["b", 10],
        ]),
      ),
    ).toBeCloseTo(11, 9);
  });

  it("splits a job fractionally when capacity is tight (the LP relaxation)", () => {
    const jobs = [
      {
        units: 2,
        options: [
          { resource: "cheap", cost: 2 },
          { resource: "dear", cost: 10 },
        ],
      },
      {
        units: 2,
        options: [
          { resource: "cheap", cost: 2 },
          { resource: "dear", cost: 10 },
        ],
      },
    ];
    // 4 GPUs wanted, 3 cheap: one job whole on cheap (2), the other half cheap (1) half dear (5).
    expect(
      transportationBound(
        jobs,
        new Map([
          ["cheap", 3],
          ["dear", 4],
        ]),
      ),
    ).toBeCloseTo(8, 9);
  });

  it("is undefined when the jobs cannot all fit", () => {
    const jobs = [{ units: 3, options: [{ resource: "a", cost: 1 }] }];
    expect(transportationBound(jobs, new Map([["a", 2]]))).toBeUndefined();
  });
});
