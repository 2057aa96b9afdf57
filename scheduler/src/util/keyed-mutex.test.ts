import { describe, expect, it } from "vitest";
import { KeyedMutex } from "./keyed-mutex.js";

describe("KeyedMutex", () => {
  it("runs work for one key strictly one after another, other keys in parallel", async () => {
    const m = new KeyedMutex();
    const log: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const first = m.run("k", async () => {
      log.push("k1 start");
      await gate;
      log.push("k1 end");
    });
    const second = m.run("k", async () => {
      log.push("k2");
    });
    const other = m.run("o", async () => {
      log.push("o");
    });
    await other;
    expect(log).toEqual(["k1 start", "o"]);
    release();
    await Promise.all([first, second]);
    expect(log).toEqual(["k1 start", "o", "k1 end", "k2"]);
    expect(m.size).toBe(0);
  });

  it("releases the key when work throws", async () => {
    const m = new KeyedMutex();
    await expect(m.run("k", async () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    expect(await m.run("k", async () => 42)).toBe(42);
  });
});
