/**
 * `capa auth`: who am I, API keys (create, list, revoke; operators make tenant and provider keys, admins any),
 * a fresh token for a scheduler's bootstrap (offline), and saving a token into a credentials file.
 */
import type * as api from "@capa/api";
import { mintKey } from "@capa/auth";
import { Command } from "commander";
import { jsonOption, print, printJson, withScheduler } from "../context.js";
import { defaultCredentialsPath, writeCredentials } from "../credentials.js";
import { CliError } from "../errors.js";
import { formatAge, renderFields, renderTable } from "../format.js";

export function authCommand(): Command {
  const auth = new Command("auth").description("credentials: who am I, API keys (operators), credentials files");
  auth.addCommand(
    jsonOption(new Command("whoami").description("the identity of the credential in use")).action(
      async (flags: { json?: boolean }, self: Command) => {
        await withScheduler(self, async (client) => {
          const { key } = await client.whoAmI({});
          if (!key) throw new CliError("the scheduler answered WhoAmI without a key");
          if (flags.json) printJson(key);
          else print(renderKey(key));
        });
      },
    ),
  );
  auth.addCommand(
    jsonOption(
      new Command("create")
        .description("make an API key; its token is printed once (or saved with --save), only its hash is stored")
        .requiredOption("--role <role>", "tenant (with --tenant T), provider (with --provider P), operator or admin")
        .requiredOption("--name <name>", "who the key is for (shown in the audit trail)")
        .option("--provider <provider>", "the provider of a provider key")
        .option("--save <file>", "write the token into this credentials file (mode 0600) instead of printing it"),
    ).action(async (flags: CreateFlags, self: Command) => {
      await withScheduler(self, async (client) => {
        const { key, token } = await client.createKey({
          role: flags.role,
          name: flags.name,
          tenant: flags.role === "tenant" ? client.options.tenant : "",
          provider: flags.provider ?? "",
        });
        if (!key) throw new CliError("the scheduler answered CreateKey without a key");
        if (flags.save) {
          writeCredentials(flags.save, {
            token,
            address: client.options.address,
            role: key.role,
            keyId: key.keyId,
            ...(key.tenant ? { tenant: key.tenant } : {}),
            ...(key.provider ? { provider: key.provider } : {}),
          });
        }
        if (flags.json) printJson({ key, ...(flags.save ? { savedTo: flags.save } : { token }) });
        else if (flags.save) print(`created key ${key.keyId} (${describe(key)}); credentials written to ${flags.save}`);
        else print(`created key ${key.keyId} (${describe(key)})\ntoken (shown once): ${token}`);
      });
    }),
  );
  auth.addCommand(
    jsonOption(
      new Command("list")
        .description("API keys (never their secrets)")
        .option("--role <role>", "only keys of this role (--tenant: only keys of that tenant)"),
    ).action(async (flags: { role?: string; json?: boolean }, self: Command) => {
      await withScheduler(self, async (client) => {
        const { keys } = await client.listKeys({ role: flags.role ?? "", tenant: client.options.tenant });
        if (flags.json) printJson(keys);
        else
          print(
            renderTable(
              ["KEY", "ROLE", "TENANT/PROVIDER", "NAME", "CREATED", "BY"],
              keys.map((k) => [
                k.keyId,
                k.role,
                k.tenant || k.provider || "-",
                k.name,
                formatAge(k.createdAtUnixMs, Date.now()),
                k.createdBy,
              ]),
            ),
          );
      });
    }),
  );
  auth.addCommand(
    jsonOption(new Command("revoke").description("revoke a key at once").argument("<key-id>")).action(
      async (keyId: string, flags: { json?: boolean }, self: Command) => {
        await withScheduler(self, async (client) => {
          const { key } = await client.revokeKey({ keyId });
          if (flags.json) printJson(key);
          else print(`revoked key ${keyId}${key ? ` (${describe(key)})` : ""}`);
        });
      },
    ),
  );
  auth.addCommand(
    new Command("new-token")
      .description("print a fresh random admin token for a scheduler's --bootstrap-token (nothing is sent)")
      .action(() => {
        print(mintKey({ role: "admin", name: "bootstrap", createdBy: "bootstrap", nowMs: Date.now() }).token);
      }),
  );
  auth.addCommand(
    new Command("save")
      .description("store a token (from CAPA_TOKEN or --token) in a credentials file, mode 0600")
      .option("--token <token>", "the API key (default: CAPA_TOKEN)")
      .option("--file <file>", "the credentials file (default ~/.config/capa/credentials)")
      .action((flags: { token?: string; file?: string }, self: Command) => {
        const token = flags.token ?? process.env.CAPA_TOKEN;
        if (!token) throw new CliError("capa auth save needs --token or CAPA_TOKEN");
        const path = flags.file ?? defaultCredentialsPath();
        const addr = self.optsWithGlobals<{ addr?: string }>().addr ?? process.env.CAPA_GRPC_ADDR;
        writeCredentials(path, { token: token.trim(), ...(addr ? { address: addr } : {}) });
        print(`credentials written to ${path}`);
      }),
  );
  return auth;
}

interface CreateFlags {
  role: string;
  name: string;
  provider?: string;
  save?: string;
  json?: boolean;
}

function describe(k: api.ApiKey): string {
  return `${k.role}${k.tenant ? ` of tenant ${k.tenant}` : ""}${k.provider ? ` of provider ${k.provider}` : ""}, ${k.name}`;
}

function renderKey(k: api.ApiKey): string {
  return renderFields([
    ["key", k.keyId],
    ["role", k.role],
    ...(k.tenant ? ([["tenant", k.tenant]] as [string, string][]) : []),
    ...(k.provider ? ([["provider", k.provider]] as [string, string][]) : []),
    ["name", k.name],
    ["created", `${formatAge(k.createdAtUnixMs, Date.now())} by ${k.createdBy}`],
  ]);
}
