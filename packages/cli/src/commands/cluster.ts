import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { natsServers } from "@capa/bus";
import { Command } from "commander";
import { collectCluster } from "../cluster/collect.js";
import { renderCluster } from "../cluster/render.js";
import { print, printJson } from "../context.js";
import { CliError } from "../errors.js";
import { CLUSTER_FILE, type ClusterFile } from "../local/cluster-file.js";
import { NKEY_OPTION_HELP, nkeySeedFrom } from "../nats-credentials.js";
import { collectList } from "../spec.js";

interface ClusterFlags {
  stateDir: string;
  monitor: string[];
  natsUrl?: string;
  natsNkey?: string;
  json?: boolean;
}

export function clusterCommand(): Command {
  return new Command("cluster")
    .description(
      "the NATS topology and capa's replicated state: servers, gateways, the scheduler leader, stream replicas " +
        "and their health (from the servers' monitoring endpoints and the JetStream API)",
    )
    .option(
      "--state-dir <dir>",
      "the state dir of `capa up --regions` (reads <dir>/supercluster/cluster.json)",
      "./.capa",
    )
    .option(
      "--monitor <url>",
      "a server's monitoring URL, e.g. http://nats-1:8222 (repeatable or comma-separated)",
      collectList,
      [],
    )
    .option("--nats-url <url>", "home cluster URL(s) for the JetStream view (env CAPA_NATS_URL)")
    .option("--nats-nkey <file>", `${NKEY_OPTION_HELP}; default: the scheduler key of capa up --regions`)
    .option("--json", "print the report as one JSON document")
    .action(async (flags: ClusterFlags) => {
      const file = join(resolve(flags.stateDir), "supercluster", CLUSTER_FILE);
      const described: ClusterFile | undefined =
        flags.monitor.length === 0 && existsSync(file)
          ? (JSON.parse(readFileSync(file, "utf8")) as ClusterFile)
          : undefined;
      const monitorUrls =
        flags.monitor.length > 0 ? flags.monitor : (described?.servers.map((s) => s.monitorUrl) ?? []);
      if (monitorUrls.length === 0)
        throw new CliError(
          `no cluster to show: ${file} does not exist (start one with \`capa up --regions N\`) and no --monitor was given`,
        );
      const natsValue = flags.natsUrl ?? process.env.CAPA_NATS_URL;
      const natsUrls = natsValue ? natsServers(natsValue) : described ? (described.natsUrls[described.home] ?? []) : [];
      const nkeySeed = nkeySeedFrom(flags.natsNkey ?? described?.natsNkeyFile);
      const report = await collectCluster({
        monitorUrls,
        natsUrls,
        ...(nkeySeed ? { nkeySeed } : {}),
        ...(described ? { home: described.home, schedulers: described.schedulers } : {}),
      });
      if (flags.json) printJson(report);
      else print(renderCluster(report, Date.now()));
    });
}
