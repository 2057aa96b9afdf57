/**
 * NATS credentials for the verbs that talk to NATS (`capa scheduler`, `capa agent`, `capa agent price set`): an
 * nkey seed file written by `capa agent enroll` (or `<auth-dir>/scheduler.nk`), from `--nats-nkey` or
 * CAPA_NATS_NKEY. The auth directory defaults to CAPA_NATS_AUTH_DIR or ~/.capa/nats-auth.
 */
import { homedir } from "node:os";
import { join } from "node:path";
import { readSeedFile } from "@capa/nats-auth";
import { CliError } from "./errors.js";

export const NKEY_OPTION_HELP = "nkey seed file for NATS (env CAPA_NATS_NKEY; from capa agent enroll)";

/** The seed in `--nats-nkey FILE` (or CAPA_NATS_NKEY), undefined when neither is set. */
export function nkeySeedFrom(flag: string | undefined): string | undefined {
  const path = flag ?? process.env.CAPA_NATS_NKEY;
  if (!path) return undefined;
  try {
    return readSeedFile(path);
  } catch (err) {
    throw new CliError(`--nats-nkey: ${(err as Error).message}`);
  }
}

export function defaultAuthDir(): string {
  return process.env.CAPA_NATS_AUTH_DIR ?? join(homedir(), ".capa", "nats-auth");
}
