// Shared by the code generators (scripts/proto.mjs, scripts/proto-python.mjs): list a generated tree and compare a
// fresh generation with the committed one, so a stale check reads the same for every language.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";

export function list(dir, base = dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    if (name === "__pycache__") return [];
    const path = join(dir, name);
    return statSync(path).isDirectory() ? list(path, base) : [relative(base, path)];
  });
}

export function compare(fresh, old) {
  const a = new Set(list(fresh));
  const b = new Set(list(old));
  const differ = [];
  for (const f of a) if (!b.has(f) || !readFileSync(join(fresh, f)).equals(readFileSync(join(old, f)))) differ.push(f);
  for (const f of b) if (!a.has(f)) differ.push(`${f} (not generated any more)`);
  return differ;
}
