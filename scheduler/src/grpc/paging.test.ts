import { ValidationError } from "@capa/domain";
import { describe, expect, it } from "vitest";
import { compareKeys, pageByKey, pageByOffset } from "./paging.js";

const items = ["a", "b", "c", "d", "e"];
const byKey = (pageToken: string, filter: unknown = "f") =>
  pageByKey(items, { pageToken, size: 2, filter, key: (s) => [s], compare: compareKeys });

describe("page tokens", () => {
  it("walks a keyset listing page by page and ends with an empty token", () => {
    const one = byKey("");
    const two = byKey(one.nextPageToken);
    const three = byKey(two.nextPageToken);
    expect([one.items, two.items, three.items]).toEqual([["a", "b"], ["c", "d"], ["e"]]);
    expect(three.nextPageToken).toBe("");
  });

  it("keeps its place when items are added before the cursor (keyset)", () => {
    const one = byKey("");
    const grown = pageByKey(["0", ...items], {
      pageToken: one.nextPageToken,
      size: 2,
      filter: "f",
      key: (s) => [s],
      compare: compareKeys,
    });
    expect(grown.items).toEqual(["c", "d"]);
  });

  it("refuses a token of another filter, garbage, and a forged key", () => {
    const one = byKey("");
    expect(() => byKey(one.nextPageToken, "other")).toThrow(ValidationError);
    expect(() => byKey("not base64 json")).toThrow(/page_token/);
    const forged = Buffer.from(JSON.stringify({ f: "x", k: [{}] })).toString("base64url");
    expect(() => byKey(forged)).toThrow(ValidationError);
  });

  it("pages by offset, asking the source for one more than the page to know whether more follow", async () => {
    const asked: number[] = [];
    const fetch = (n: number) => {
      asked.push(n);
      return n === 0 ? items : items.slice(0, n);
    };
    const one = await pageByOffset(fetch, { pageToken: "", size: 3, filter: 1 });
    const two = await pageByOffset(fetch, { pageToken: one.nextPageToken, size: 3, filter: 1 });
    expect([one.items, two.items, two.nextPageToken]).toEqual([["a", "b", "c"], ["d", "e"], ""]);
    expect(asked).toEqual([4, 7]);
    expect((await pageByOffset(fetch, { pageToken: "", size: 0, filter: 1 })).items).toEqual(items);
  });

  it("orders keys numerically, then as text", () => {
    expect(compareKeys([-10, "b"], [-9, "a"])).toBeLessThan(0);
    expect(compareKeys([1, "a"], [1, "b"])).toBeLessThan(0);
    expect(compareKeys([1, "b"], [1, "b"])).toBe(0);
  });
});
