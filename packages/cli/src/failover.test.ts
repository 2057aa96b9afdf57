import { describe, expect, it } from "vitest";
import { AddressListError, AddressRotation, parseAddresses, withFailover } from "./failover.js";

const FAST = { retries: 5, minDelayMs: 1, maxDelayMs: 2, maxElapsedMs: 5_000 };
const unavailable = () => Object.assign(new Error("14 UNAVAILABLE: No connection established"), { code: 14 });
const isUnavailable = (err: unknown) => (err as { code?: number }).code === 14;

describe("parseAddresses", () => {
  it.each([
    ["127.0.0.1:50051", ["127.0.0.1:50051"]],
    [" a:1, b.example:2 ,", ["a:1", "b.example:2"]],
    ["dns:///scheduler.capa.svc:50051", ["dns:///scheduler.capa.svc:50051"]],
    ["[::1]:50051", ["[::1]:50051"]],
  ])("%j → %j", (input, expected) => {
    expect(parseAddresses(input)).toEqual(expected);
  });

  it.each([[""], [" , "], ["localhost"], ["a:1,b"], ["http://a:1"]])("refuses %j", (input) => {
    expect(() => parseAddresses(input)).toThrow(AddressListError);
  });
});

describe("withFailover", () => {
  it("moves to the next replica on UNAVAILABLE and stays on the one that answered", async () => {
    const rotation = new AddressRotation(["a:1", "b:2", "c:3"]);
    const tried: string[] = [];
    const down = new Set(["a:1", "b:2"]);
    const call = async (address: string) => {
      tried.push(address);
      if (down.has(address)) throw unavailable();
      return `ok from ${address}`;
    };
    expect(await withFailover(rotation, call, isUnavailable, FAST)).toBe("ok from c:3");
    expect(tried).toEqual(["a:1", "b:2", "c:3"]);
    expect(await withFailover(rotation, call, isUnavailable, FAST)).toBe("ok from c:3");
    expect(tried).toEqual(["a:1", "b:2", "c:3", "c:3"]);
  });

  it("does not retry other errors, and gives up after the retries with the last error", async () => {
    const rotation = new AddressRotation(["a:1", "b:2"]);
    let calls = 0;
    const invalid = Object.assign(new Error("3 INVALID_ARGUMENT: spec.gpus"), { code: 3 });
    await expect(
      withFailover(
        rotation,
        async () => {
          calls++;
          throw invalid;
        },
        isUnavailable,
        FAST,
      ),
    ).rejects.toBe(invalid);
    expect(calls).toBe(1);
    calls = 0;
    await expect(
      withFailover(
        rotation,
        async () => {
          calls++;
          throw unavailable();
        },
        isUnavailable,
        FAST,
      ),
    ).rejects.toThrow(/UNAVAILABLE/);
    expect(calls).toBe(FAST.retries + 1);
  });
});

describe("leader hint", () => {
  it("goes straight to the leader a follower named when it is in the list, else to the next address", async () => {
    const rotation = new AddressRotation(["a:1", "b:2", "c:3"]);
    rotation.failed("a:1", "c:3");
    expect(rotation.current).toBe("c:3");
    rotation.failed("c:3", "elsewhere:9");
    expect(rotation.current).toBe("a:1");
    const tried: string[] = [];
    const notLeader = (leader: string) => Object.assign(unavailable(), { leader });
    const out = await withFailover(
      new AddressRotation(["a:1", "b:2", "c:3"]),
      async (address) => {
        tried.push(address);
        if (address !== "c:3") throw notLeader("c:3");
        return "ok";
      },
      isUnavailable,
      FAST,
      (err) => (err as { leader?: string }).leader,
    );
    expect(out).toBe("ok");
    expect(tried).toEqual(["a:1", "c:3"]);
  });
});
