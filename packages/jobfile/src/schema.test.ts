import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { jsonSchema, KINDS } from "./schema.js";

describe("published JSON Schema", () => {
  it("schema/capa-v1.schema.json is what the zod schemas export (run `npm run schema` when this fails)", () => {
    const committed = readFileSync(new URL("../schema/capa-v1.schema.json", import.meta.url), "utf8");
    expect(committed).toBe(`${JSON.stringify(jsonSchema(), null, 2)}\n`);
  });

  it("has one branch per kind, each pinned by its apiVersion and kind", () => {
    const schema = jsonSchema() as { oneOf: { properties: Record<string, { const?: string }> }[] };
    expect(schema.oneOf.map((s) => s.properties.kind?.const)).toEqual(Object.keys(KINDS));
    for (const branch of schema.oneOf) expect(branch.properties.apiVersion?.const).toBe("capa/v1");
  });
});
