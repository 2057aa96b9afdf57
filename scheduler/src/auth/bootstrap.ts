/**
 * The first credential. With a bootstrap token (flag or CAPA_BOOTSTRAP_TOKEN) the scheduler registers it as an
 * admin key. Otherwise, when the key bucket holds no admin key, it makes one and writes it to
 * `<dataDir>/admin.credentials` (mode 0600, in the credentials-file format the CLI reads), and logs the path,
 * never the token.
 */
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type CredentialsFile, hashSecret, parseToken } from "@capa/auth";
import type { Logger } from "pino";
import type { KeyStore } from "./key-store.js";

export const ADMIN_CREDENTIALS_FILE = "admin.credentials";

export function writeCredentialsFile(path: string, creds: CredentialsFile): void {
  writeFileSync(path, `${JSON.stringify(creds, null, 2)}\n`, { mode: 0o600 });
  chmodSync(path, 0o600); // an existing file keeps its mode on write: tighten it.
}

export async function bootstrapAdmin(
  keys: KeyStore,
  opts: { dataDir: string; bootstrapToken: string | undefined; address: string; now: number },
  logger: Logger,
): Promise<string | undefined> {
  if (opts.bootstrapToken) {
    const { keyId, secret } = parseToken(opts.bootstrapToken);
    if (!keys.table.get(keyId)) {
      await keys.register({
        keyId,
        secretHash: hashSecret(secret),
        role: "admin",
        tenant: "",
        provider: "",
        name: "bootstrap",
        createdAtMs: opts.now,
        createdBy: "bootstrap",
      });
      logger.info({ keyId }, "bootstrap admin key registered");
    }
    return undefined;
  }
  if (keys.table.list().some((k) => k.role === "admin")) return undefined;
  const { token, record } = await keys.create({
    role: "admin",
    name: "bootstrap-admin",
    createdBy: "bootstrap",
    nowMs: opts.now,
  });
  mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
  const path = join(opts.dataDir, ADMIN_CREDENTIALS_FILE);
  writeCredentialsFile(path, { token, address: opts.address, role: "admin", keyId: record.keyId });
  logger.warn({ keyId: record.keyId, path }, "no admin key existed: created one (export CAPA_CREDENTIALS=<path>)");
  return path;
}
