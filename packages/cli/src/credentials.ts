/**
 * Where the CLI's credential comes from: `CAPA_TOKEN`, else the credentials file named by `CAPA_CREDENTIALS`,
 * else `~/.config/capa/credentials` when it exists. The file is one JSON object `{"token": "capa_…", "address":
 * "host:port"}` (what `capa up`, `capa auth create --save` and the scheduler's bootstrap write) and must not be
 * readable by group or others, like an ssh key: a looser file is refused rather than used.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import type { CredentialsFile } from "@capa/auth";
import { CliError } from "./errors.js";

export type { CredentialsFile };

export function defaultCredentialsPath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), ".config");
  return join(base, "capa", "credentials");
}

/** The credentials file in effect, or undefined when there is none (no CAPA_CREDENTIALS, no default file). */
export function readCredentials(
  env: NodeJS.ProcessEnv = process.env,
): (CredentialsFile & { path: string }) | undefined {
  const named = env.CAPA_CREDENTIALS?.trim();
  const path = named || defaultCredentialsPath(env);
  if (!named && !existsSync(path)) return undefined;
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch (err) {
    throw new CliError(`cannot read the credentials file ${path} (CAPA_CREDENTIALS): ${(err as Error).message}`);
  }
  if ((mode & 0o077) !== 0)
    throw new CliError(
      `the credentials file ${path} is readable by others (mode ${(mode & 0o777).toString(8)}): chmod 600 it`,
    );
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new CliError(`the credentials file ${path} is not JSON: ${(err as Error).message}`);
  }
  const token = (parsed as { token?: unknown })?.token;
  if (typeof token !== "string" || token.trim() === "")
    throw new CliError(`the credentials file ${path} has no "token"`);
  const p = parsed as CredentialsFile;
  return { ...p, token: token.trim(), path };
}

/** Writes a credentials file with mode 0600 (its directory 0700 when made). */
export function writeCredentials(path: string, creds: CredentialsFile): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path, `${JSON.stringify(creds, null, 2)}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
}
