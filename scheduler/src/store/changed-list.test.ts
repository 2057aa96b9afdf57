import { jsonCodec, TypedKv } from "@capa/bus";
import { describe, expect, it, vi } from "vitest";
import { memoryKv } from "../market/memory-kv.test-helper.js";
import { ChangedList } from "./changed-list.js";

describe("ChangedList", () => {
  it("lists again only when the bucket's last sequence or message count moved", async () => {
    const raw = memoryKv();
    const state = { last_seq: 0, messages: 0 };
    Object.assign(raw, { status: async () => ({ streamInfo: { state: { ...state } } }) });
    const kv = new TypedKv(raw, jsonCodec<{ n: number }>());
    const write = async (key: string, n: number) => {
      await kv.create(key, { n });
      state.last_seq++;
      state.messages++;
    };
    const listing = new ChangedList(kv);
    const lists = vi.spyOn(kv, "list");
    await write("a", 1);
    expect((await listing.list()).map((e) => e.value)).toEqual([{ n: 1 }]);
    const handedOut = await listing.list();
    handedOut[0]!.value.n = 99; // a caller's change never reaches the kept listing
    expect((await listing.list()).map((e) => e.value)).toEqual([{ n: 1 }]);
    expect(lists).toHaveBeenCalledTimes(1);
    await write("b", 2);
    expect((await listing.list()).map((e) => e.key)).toEqual(["a", "b"]);
    expect(lists).toHaveBeenCalledTimes(2);
    // A raw stream purge adds no message: the count it lowers tells.
    await raw.purge("a");
    state.messages--;
    expect((await listing.list()).map((e) => e.key)).toEqual(["b"]);
    expect(lists).toHaveBeenCalledTimes(3);
  });
});
