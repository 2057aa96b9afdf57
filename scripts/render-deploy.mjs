#!/usr/bin/env node
// Renders the NATS configs of docker/compose.yaml (docker/nats/<server>.conf) and of docker/k8s
// (docker/k8s/nats-config.yaml) from @capa/topology. `--check` renders and compares instead of writing
// (test/src/docker-config.test.ts does the same). Run `npm run build` first.
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { deployFiles } from "../test/dist/deploy-files.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const check = process.argv.includes("--check");
let stale = 0;
for (const [path, text] of deployFiles()) {
  const file = join(root, path);
  if (check) {
    let current = "";
    try {
      current = readFileSync(file, "utf8");
    } catch {}
    if (current !== text) {
      process.stderr.write(`stale: ${path} (npm run render:deploy)\n`);
      stale++;
    }
  } else writeFileSync(file, text);
}
if (stale > 0) process.exit(1);
