import { API_VERSION, CAPA_VERSION } from "@capa/domain";
import { Command } from "commander";
import { jsonOption, print, printJson, withScheduler } from "../context.js";
import { renderFields } from "../format.js";

interface VersionFlags {
  client?: boolean;
  json?: boolean;
}

/** `capa version`: this CLI's version and the scheduler's (GetVersion); `--client` asks no one. */
export function versionCommand(): Command {
  return jsonOption(new Command("version").description("print the client's and the scheduler's version"))
    .option("--client", "only the client's version (no scheduler needed)")
    .action(async (flags: VersionFlags, self: Command) => {
      const client = { version: CAPA_VERSION, apiVersion: API_VERSION };
      if (flags.client) {
        if (flags.json) printJson({ client });
        else print(renderFields([["client", `${client.version} (${client.apiVersion})`]]));
        return;
      }
      await withScheduler(self, async (scheduler) => {
        const server = await scheduler.getVersion({});
        const doc = { client, server: { ...server, address: scheduler.options.address } };
        if (flags.json) printJson(doc);
        else
          print(
            renderFields([
              ["client", `${client.version} (${client.apiVersion})`],
              ["server", `${server.version} (${server.apiVersion}) at ${scheduler.options.address}`],
            ]),
          );
      });
    });
}
