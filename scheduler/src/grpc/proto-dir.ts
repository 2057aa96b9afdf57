/**
 * Finds the repository's `proto/` directory for server reflection. This file sits at scheduler/src/grpc (tests,
 * tsx) or scheduler/dist/grpc (built), both three levels below the repository root; when neither exists (an
 * installed package elsewhere) it walks up from here. `protoDir` in the config overrides it.
 */
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const MARKER = join("capa", "v1", "jobs.proto");

export function findProtoDir(override?: string): string | undefined {
  if (override) return existsSync(join(override, MARKER)) ? resolve(override) : undefined;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    const candidate = join(dir, "proto");
    if (existsSync(join(candidate, MARKER))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return undefined;
}

export const PROTO_FILES = [
  "capa/v1/types.proto",
  "capa/v1/bus.proto",
  "capa/v1/jobs.proto",
  "capa/v1/operator.proto",
  "capa/v1/billing.proto",
  "capa/v1/services.proto",
];
