import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

/** The package is a pure library: no I/O, no wall clock, no ambient randomness (tests excepted). */
const FORBIDDEN: Array<[RegExp, string]> = [
  [/from\s+["']node:/, "node: import"],
  [/require\(\s*["']node:/, "node: require"],
  [/from\s+["'](fs|path|os|net|http|https|child_process|worker_threads)["']/, "Node built-in import"],
  [/["']nats["']|@grpc\/|@capa\/(api|bus|scheduler)|\/proto\//, "transport import"],
  [/Date\.now\s*\(/, "Date.now()"],
  [/new\s+Date\s*\(\s*\)/, "new Date()"],
  [/Math\.random\s*\(/, "Math.random()"],
  [/performance\.now\s*\(/, "performance.now()"],
  [/process\./, "process access"],
];

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return path.endsWith(".ts") && !path.endsWith(".test.ts") ? [path] : [];
  });
}

describe("package purity", () => {
  const files = sources(dirname(fileURLToPath(import.meta.url)));

  it("finds the sources", () => {
    expect(files.length).toBeGreaterThan(10);
  });

  it.each(
    files.map((f) => [f.slice(f.indexOf("src/")), f]),
  )("%s imports no I/O, clock or randomness", (_name, file) => {
    const text = readFileSync(file, "utf8");
    const found = FORBIDDEN.filter(([pattern]) => pattern.test(text)).map(([, what]) => what);
    expect(found).toEqual([]);
  });
});
