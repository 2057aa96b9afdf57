// Writes schema/capa-v1.schema.json from the zod schemas (run by `npm run schema` after a build);
// src/schema.test.ts fails when the committed file is stale.
import { writeFileSync } from "node:fs";
import { jsonSchema } from "./dist/index.js";

const target = new URL("./schema/capa-v1.schema.json", import.meta.url);
writeFileSync(target, `${JSON.stringify(jsonSchema(), null, 2)}\n`);
process.stdout.write(`wrote ${target.pathname}\n`);
