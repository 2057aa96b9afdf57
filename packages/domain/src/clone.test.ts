import { describe, expect, it } from "vitest";
import { clonePlain } from "./clone.js";
import { defaultJobSpec } from "./job.js";

describe("clonePlain", () => {
  it("copies plain data deeply: equal to structuredClone's copy, sharing nothing with the original", () => {
    const job = {
      id: "j1",
      spec: defaultJobSpec({ nodeSelector: { zone: "a" }, demandByRegion: { "eu-west": 2 } }),
      tasks: [{ id: "j1-0", gpuIndices: [0, 3], checkpoint: { path: "/c", atMs: 5 }, resumeNote: undefined }],
      spent: 0,
      cancelRequested: false,
      rendezvous: null,
    };
    const copy = clonePlain(job);
    expect(copy).toStrictEqual(structuredClone(job));
    expect(Object.keys(copy.tasks[0]!)).toEqual(Object.keys(job.tasks[0]!)); // an undefined value is kept
    copy.tasks[0]!.gpuIndices.push(7);
    copy.tasks[0]!.checkpoint.atMs = 9;
    copy.spec.nodeSelector.zone = "b";
    expect(job.tasks[0]!.gpuIndices).toEqual([0, 3]);
    expect(job.tasks[0]!.checkpoint.atMs).toBe(5);
    expect(job.spec.nodeSelector.zone).toBe("a");
  });

  it("copies what is not a plain object or array as structuredClone does", () => {
    const value = { bytes: new Uint8Array([1, 2]), at: new Date(5), seen: new Map([["a", 1]]) };
    const copy = clonePlain(value);
    expect(copy.bytes).toBeInstanceOf(Uint8Array);
    expect(copy.bytes).not.toBe(value.bytes);
    expect([...copy.bytes]).toEqual([1, 2]);
    expect(copy.at).toBeInstanceOf(Date);
    expect(copy.at.getTime()).toBe(5);
    expect(copy.seen.get("a")).toBe(1);
  });
});
