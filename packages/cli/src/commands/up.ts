import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { Command } from "commander";
import { print, printJsonLine } from "../context.js";
import { CliError } from "../errors.js";
import { formatPrice } from "../format.js";
import { SchedulerClient } from "../grpc.js";
import { fileLogger } from "../local/logger.js";
import { type RegionalStack, SUPERCLUSTER_REGIONS, startRegionalStack } from "../local/regional-stack.js";
import { stopWithin, waitForShutdownSignal } from "../local/signals.js";
import { type LocalStack, startLocalStack } from "../local/stack.js";
import { collectList, parseInteger } from "../spec.js";

interface UpFlags {
  stateDir: string;
  natsPort: number;
  grpcHost: string;
  grpcPort: number;
  httpPort: number;
  metricsPort: number;
  region: string[];
  agentsPerRegion: number;
  gpus: string;
  pricesDir?: string;
  fresh?: boolean;
  logLevel: string;
  json?: boolean;
  regions?: number;
  serversPerRegion: number;
  schedulers: number;
  jsReplicas?: number;
}

const DEFAULT_REGIONS = ["eu-west", "us-east"];

export function upCommand(): Command {
  return new Command("up")
    .description("run capa locally: nats-server (JetStream), a scheduler and simulated agents in two regions")
    .option("--state-dir <dir>", "where capa up keeps its state (JetStream store, agent work dirs, log)", "./.capa")
    .option("--nats-port <port>", "NATS port (0 = a free port)", parseInteger, 0)
    .option("--grpc-host <host>", "scheduler gRPC listen host", "127.0.0.1")
    .option("--grpc-port <port>", "scheduler gRPC port (0 = a free port)", parseInteger, 50051)
    .option(
      "--http-port <port>",
      "scheduler HTTP edge port: console, webhooks, JSON reads (0 = a free port; with --regions, port+i per replica)",
      parseInteger,
      8088,
    )
    .option(
      "--metrics-port <port>",
      "Prometheus metrics: the scheduler's on this port, the agents' on the next (with --regions: one per " +
        "replica, then the agents'); 0 = free ports, printed when ready",
      parseInteger,
      0,
    )
    .option("--region <region>", "agent regions (repeatable; default eu-west and us-east)", collectList, [])
    .option("--agents-per-region <n>", "simulated agents per region", parseInteger, 2)
    .option("--gpus <spec>", "simulated GPUs of each agent", "4xH100-80GB,2xA100-80GB")
    .option("--prices-dir <dir>", "price catalog directory (default CAPA_PRICES_DIR or ../shared/data/prices)")
    .option("--fresh", "start from an empty JetStream store (forget earlier jobs)")
    .option("--log-level <level>", "level of the log file <state-dir>/capa.log", "info")
    .option("--json", "print one JSON line {natsUrl, grpcAddress, agents, ...} once ready; progress goes to stderr")
    .option(
      "--regions <n>",
      `a local multi-region capa: a NATS supercluster of n regions (${SUPERCLUSTER_REGIONS.join(", ")}; or the ` +
        "first n --region names) with gateways, JetStream R3, 2 scheduler replicas and agents in every region",
      parseInteger,
    )
    .option("--servers-per-region <n>", "with --regions: nats-servers per region", parseInteger, 3)
    .option("--schedulers <n>", "with --regions: scheduler replicas (one leader)", parseInteger, 2)
    .option(
      "--js-replicas <n>",
      "with --regions: JetStream replicas (default 3 with 3 servers per region)",
      parseInteger,
    )
    .action(async (flags: UpFlags) => {
      if (flags.agentsPerRegion < 1) throw new CliError("--agents-per-region must be at least 1");
      const logFile = join(resolve(flags.stateDir), "capa.log");
      const say = (line: string) => process.stderr.write(`capa up: ${line}\n`);
      if (flags.regions !== undefined) return upRegions(flags, logFile, say);
      let stack: LocalStack;
      try {
        stack = await startLocalStack({
          ...sharedStackOptions(flags, logFile, say),
          natsPort: flags.natsPort,
          regions: flags.region.length > 0 ? flags.region : DEFAULT_REGIONS,
        });
      } catch (err) {
        throw new CliError(`up failed: ${(err as Error).message} (details in ${logFile})`);
      }
      const shutdown = waitForShutdownSignal();
      await waitUntilAgentsAreSeen(stack.grpcAddress, stack.agents.length, stack.credentials.admin, say);
      if (flags.json) {
        printJsonLine({
          natsUrl: stack.natsUrl,
          natsPid: stack.natsPid,
          natsAuthDir: stack.natsAuthDir,
          grpcAddress: stack.grpcAddress,
          httpUrl: stack.httpUrl,
          consoleUrl: `${stack.httpUrl}/console/`,
          metricsUrls: stack.metricsUrls,
          stateDir: stack.stateDir,
          logFile,
          pricesSource: stack.pricesSource,
          agents: stack.agents,
          credentials: stack.credentials,
        });
      } else {
        print(readyText(stack, logFile));
      }
      await stopOnSignal(shutdown, () => stack.stop(), "agents, scheduler and nats-server", 30, say);
    });
}

/** The options both stacks take from the same flags. */
function sharedStackOptions(flags: UpFlags, logFile: string, say: (line: string) => void) {
  return {
    stateDir: flags.stateDir,
    grpcHost: flags.grpcHost,
    grpcPort: flags.grpcPort,
    httpPort: flags.httpPort,
    metricsPort: flags.metricsPort,
    agentsPerRegion: flags.agentsPerRegion,
    gpus: flags.gpus,
    ...(flags.pricesDir ? { pricesDir: flags.pricesDir } : {}),
    fresh: flags.fresh ?? false,
    logger: fileLogger(logFile, flags.logLevel),
    say,
  };
}

/** `capa up --regions N`: the supercluster, scheduler replicas and agents of `startRegionalStack`. */
async function upRegions(flags: UpFlags, logFile: string, say: (line: string) => void): Promise<void> {
  const n = flags.regions!;
  const names = flags.region.length > 0 ? flags.region : [...SUPERCLUSTER_REGIONS];
  if (!Number.isInteger(n) || n < 1 || n > names.length)
    throw new CliError(`--regions must be an integer in 1..${names.length}, got ${n}`);
  if (flags.schedulers < 1) throw new CliError("--schedulers must be at least 1");
  let stack: RegionalStack;
  try {
    stack = await startRegionalStack({
      ...sharedStackOptions(flags, logFile, say),
      regions: names.slice(0, n),
      serversPerRegion: flags.serversPerRegion,
      natsBasePort: flags.natsPort,
      schedulers: flags.schedulers,
      ...(flags.jsReplicas !== undefined ? { jsReplicas: flags.jsReplicas } : {}),
    });
  } catch (err) {
    throw new CliError(`up failed: ${(err as Error).message} (details in ${logFile})`);
  }
  const shutdown = waitForShutdownSignal();
  await waitUntilAgentsAreSeen(stack.grpcAddresses.join(","), stack.agents.length, stack.credentials.admin, say);
  const grpcAddress = stack.grpcAddresses.join(",");
  if (flags.json) {
    printJsonLine({
      home: stack.home,
      natsUrls: stack.natsUrls,
      natsUrl: stack.natsUrls[stack.home]!.join(","),
      grpcAddress,
      grpcAddresses: stack.grpcAddresses,
      httpUrls: stack.httpUrls,
      metricsUrls: stack.metricsUrls,
      stateDir: stack.stateDir,
      clusterFile: stack.clusterFile,
      logFile,
      pricesSource: stack.pricesSource,
      agents: stack.agents,
      credentials: stack.credentials,
    });
  } else {
    print(
      [
        "capa is up (multi-region).",
        ...Object.entries(stack.natsUrls).map(
          ([region, urls]) =>
            `  NATS ${region.padEnd(12)} ${urls.join(",")}${region === stack.home ? "  (home: JetStream)" : ""}`,
        ),
        `  schedulers ${grpcAddress} (gRPC; one leader)`,
        `  HTTP       ${stack.httpUrls.join(", ")} (console, webhooks; API keys)`,
        `  console    ${stack.httpUrls[0]}/console/`,
        `  metrics    ${[...stack.metricsUrls.schedulers, stack.metricsUrls.agents].join(", ")} (Prometheus)`,
        `  prices     ${stack.pricesSource}`,
        `  state      ${stack.stateDir}`,
        `  log        ${logFile}`,
        `  credentials ${stack.credentials.dir}: admin, tenant (tenant "default"), provider (mode 0600)`,
        `  agents     ${stack.agents.map((a) => a.agentId).join(", ")}`,
        "",
        "In another shell:",
        `  export CAPA_GRPC_ADDR=${grpcAddress}`,
        `  export CAPA_NATS_URL=${stack.natsUrls[stack.home]!.join(",")}`,
        `  export CAPA_CREDENTIALS=${stack.credentials.tenant}   # operator verbs: ${stack.credentials.admin}`,
        `  capa cluster --state-dir ${flags.stateDir}`,
        "",
        "Ctrl-C stops everything.",
      ].join("\n"),
    );
  }
  await stopOnSignal(shutdown, () => stack.stop(), "agents, schedulers and nats-servers", 60, say);
}

async function stopOnSignal(
  shutdown: Promise<NodeJS.Signals>,
  stop: () => Promise<void>,
  what: string,
  seconds: number,
  say: (line: string) => void,
): Promise<void> {
  const signal = await shutdown;
  say(`${signal}: stopping ${what}`);
  if (!(await stopWithin(stop, seconds * 1000)))
    throw new CliError(`capa up: components did not stop within ${seconds} s`);
  say("stopped");
}

/** Ready means the scheduler lists every agent: a job submitted right after sees the whole fleet. */
async function waitUntilAgentsAreSeen(
  address: string,
  agents: number,
  adminCredentials: string,
  say: (line: string) => void,
): Promise<void> {
  const token = (JSON.parse(readFileSync(adminCredentials, "utf8")) as { token: string }).token;
  const client = new SchedulerClient({ address, tenant: "", token });
  const deadline = Date.now() + 30_000;
  try {
    while (Date.now() < deadline) {
      try {
        const { agents: listed } = await client.listAgents({ region: "", limit: 0, pageToken: "" });
        if (listed.length >= agents) return;
      } catch {
        // not serving yet: try again
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    say("warning: the scheduler does not list every agent yet; jobs wait until it does");
  } finally {
    client.close();
  }
}

function readyText(stack: LocalStack, logFile: string): string {
  const agents = stack.agents.map(
    (a) =>
      `    ${a.agentId.padEnd(18)} ${a.region.padEnd(9)} ${a.gpus}  ` +
      a.prices.map((p) => `${p.gpuModel} ${formatPrice(p.onDemandPerHour)}/GPU-h`).join(", ") +
      `  (${a.provider})`,
  );
  return [
    "capa is up.",
    `  NATS       ${stack.natsUrl} (nkey users: ${stack.natsAuthDir})`,
    `  scheduler  ${stack.grpcAddress} (gRPC)`,
    `  HTTP       ${stack.httpUrl} (console, webhooks; API keys)`,
    `  console    ${stack.httpUrl}/console/ (sign in with a key from the credentials files below)`,
    `  metrics    ${stack.metricsUrls.scheduler}, ${stack.metricsUrls.agents} (Prometheus)`,
    `  prices     ${stack.pricesSource}`,
    `  state      ${stack.stateDir}`,
    `  log        ${logFile}`,
    `  credentials ${stack.credentials.dir}: admin, tenant (tenant "default"), provider (mode 0600)`,
    "  agents",
    ...agents,
    "",
    "In another shell:",
    `  export CAPA_GRPC_ADDR=${stack.grpcAddress}`,
    `  export CAPA_NATS_URL=${stack.natsUrl}`,
    `  export CAPA_CREDENTIALS=${stack.credentials.tenant}   # operator verbs: ${stack.credentials.admin}`,
    "  capa submit --gpus 1 -- sh -c 'echo hello from $CUDA_VISIBLE_DEVICES'",
    "",
    "Ctrl-C stops everything.",
  ].join("\n");
}
