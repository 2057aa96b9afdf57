#!/usr/bin/env node
// The `capa` command. The code lives in ../dist (built by `npm run build`); this file only loads it.
import { existsSync } from "node:fs";

const main = new URL("../dist/main.js", import.meta.url);
if (!existsSync(main)) {
  console.error("capa: the CLI is not built yet: run `npm run build` in the repository root");
  process.exit(1);
}
await import(main.href);
