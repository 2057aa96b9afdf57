#!/usr/bin/env node
// Regenerates packages/api/src/gen from proto/ with buf + ts-proto (both pinned in devDependencies).
// With --check, generates into a temporary folder and fails when the committed code differs: stale code never lands.
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const committed = join(root, "packages/api/src/gen");
const check = process.argv.includes("--check");
const bin = (name) => join(root, "node_modules/.bin", name);

const out = mkdtempSync(join(tmpdir(), "capa-proto-"));
const template = JSON.stringify({
  version: "v2",
  plugins: [
    {
      local: bin("protoc-gen-ts_proto"),
      out,
      opt: [
        "outputServices=grpc-js",
        "esModuleInterop=true",
        "env=node",
        "importSuffix=.js",
        "forceLong=number",
        "useDate=false",
        "useExactTypes=false",
        "outputTypeRegistry=false",
        "exportCommonSymbols=false",
      ],
    },
  ],
});
try {
  execFileSync(bin("buf"), ["lint"], { cwd: root, stdio: "inherit" });
  execFileSync(bin("buf"), ["generate", "--template", template], { cwd: root, stdio: "inherit" });
  if (check) {
    const diff = compare(out, committed);
    if (diff.length > 0) {
      console.error(
        `generated code is stale (${diff.length} file(s) differ):\n  ${diff.join("\n  ")}\nrun: npm run proto`,
      );
      process.exit(1);
    }
    console.log("generated code is up to date");
  } else {
    rmSync(committed, { recursive: true, force: true });
    cpSync(out, committed, { recursive: true });
    console.log(`generated ${list(committed).length} files into ${relative(root, committed)}`);
  }
} finally {
  rmSync(out, { recursive: true, force: true });
}

function list(dir, base = dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? list(path, base) : [relative(base, path)];
  });
}

function compare(fresh, old) {
  const a = new Set(list(fresh));
  const b = new Set(list(old));
  const differ = [];
  for (const f of a) if (!b.has(f) || !readFileSync(join(fresh, f)).equals(readFileSync(join(old, f)))) differ.push(f);
  for (const f of b) if (!a.has(f)) differ.push(`${f} (not generated any more)`);
  return differ;
}
