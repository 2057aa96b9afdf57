/**
 * `capa up`'s credentials: the scheduler's bootstrap admin key (written into its data dir on the first start) and a
 * tenant key for tenant `default` and a provider key for the first agent's provider, made through CreateKey. All
 * three go to `<state-dir>/credentials/{admin,tenant,provider}` (mode 0600) in the format the CLI reads with
 * CAPA_CREDENTIALS. Keys that still work are kept across restarts; after `--fresh` they are made again.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type CredentialsFile, writeCredentials } from "../credentials.js";
import { SchedulerClient } from "../grpc.js";

export interface LocalCredentials {
  dir: string;
  admin: string;
  tenant: string;
  provider: string;
}

export const LOCAL_TENANT = "default";

export async function ensureLocalCredentials(options: {
  stateDir: string;
  schedulerDataDir: string;
  grpcAddress: string;
  provider: string;
}): Promise<LocalCredentials> {
  const dir = join(options.stateDir, "credentials");
  const paths = { admin: join(dir, "admin"), tenant: join(dir, "tenant"), provider: join(dir, "provider") };
  const bootstrap = join(options.schedulerDataDir, "admin.credentials");
  const adminToken = readToken(bootstrap) ?? readToken(paths.admin);
  if (!adminToken)
    throw new Error(`no admin credential: ${bootstrap} is missing (start with --fresh to make a new one)`);
  const address = options.grpcAddress;
  const admin = new SchedulerClient({ address, tenant: "", token: adminToken });
  try {
    await admin.whoAmI({});
    writeCredentials(paths.admin, { token: adminToken, address, role: "admin" });
    for (const [role, path, scope] of [
      ["tenant", paths.tenant, { tenant: LOCAL_TENANT, provider: "" }],
      ["provider", paths.provider, { tenant: "", provider: options.provider }],
    ] as const) {
      const kept = readToken(path);
      if (kept && (await stillValid(address, kept))) {
        writeCredentials(path, { ...readFile(path), token: kept, address });
        continue;
      }
      const { key, token } = await admin.createKey({ role, name: `capa-up-${role}`, ...scope });
      const file: CredentialsFile = { token, address, role, keyId: key?.keyId ?? "" };
      if (scope.tenant) file.tenant = scope.tenant;
      if (scope.provider) file.provider = scope.provider;
      writeCredentials(path, file);
    }
  } finally {
    admin.close();
  }
  return { dir, ...paths };
}

async function stillValid(address: string, token: string): Promise<boolean> {
  const client = new SchedulerClient({ address, tenant: "", token });
  try {
    await client.whoAmI({});
    return true;
  } catch {
    return false;
  } finally {
    client.close();
  }
}

function readFile(path: string): CredentialsFile | undefined {
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(readFileSync(path, "utf8")) as CredentialsFile;
  } catch {
    return undefined;
  }
}

function readToken(path: string): string | undefined {
  const t = readFile(path)?.token;
  return typeof t === "string" && t !== "" ? t : undefined;
}
