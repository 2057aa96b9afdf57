import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { Command } from "commander";
import { print, printJsonLine } from "../context.js";
import { CliError } from "../errors.js";
import { formatPrice } from "../format.js";
import { SchedulerClient } from "../grpc.js";
import { fileLogger } from "../local/logger.js";
import { stopWithin, waitForShutdownSignal } from "../local/signals.js";
import { type LocalStack, startLocalStack } from "../local/stack.js";
import { collectList, parseInteger } from "../spec.js";

interface UpFlags {
  stateDir: string;
  natsPort: number;
  grpcHost: string;
  grpcPort: number;
  region: string[];
  agentsPerRegion: number;
  gpus: string;
  pricesDir?: string;
  fresh?: boolean;
  logLevel: string;
  json?: boolean;
}

const DEFAULT_REGIONS = ["eu-west", "us-east"];

export function upCommand(): Command {
  return new Command("up")
    .description("run capa locally: nats-server (JetStream), a scheduler and simulated agents in two regions")
    .option("--state-dir <dir>", "where capa up keeps its state (JetStream store, agent work dirs, log)", "./.capa")
    .option("--nats-port <port>", "NATS port (0 = a free port)", parseInteger, 0)
    .option("--grpc-host <host>", "scheduler gRPC listen host", "127.0.0.1")
    .option("--grpc-port <port>", "scheduler gRPC port (0 = a free port)", parseInteger, 50051)
    .option("--region <region>", "agent regions (repeatable; default eu-west and us-east)", collectList, [])
    .option("--agents-per-region <n>", "simulated agents per region", parseInteger, 2)
    .option("--gpus <spec>", "simulated GPUs of each agent", "4xH100-80GB,2xA100-80GB")
    .option("--prices-dir <dir>", "price catalog directory (default CAPA_PRICES_DIR or ../shared/data/prices)")
    .option("--fresh", "start from an empty JetStream store (forget earlier jobs)")
    .option("--log-level <level>", "level of the log file <state-dir>/capa.log", "info")
    .option("--json", "print one JSON line {natsUrl, grpcAddress, agents, ...} once ready; progress goes to stderr")
    .action(async (flags: UpFlags) => {
      if (flags.agentsPerRegion < 1) throw new CliError("--agents-per-region must be at least 1");
      const logFile = join(resolve(flags.stateDir), "capa.log");
      const say = (line: string) => process.stderr.write(`capa up: ${line}\n`);
      let stack: LocalStack;
      try {
        stack = await startLocalStack({
          stateDir: flags.stateDir,
          natsPort: flags.natsPort,
          grpcHost: flags.grpcHost,
          grpcPort: flags.grpcPort,
          regions: flags.region.length > 0 ? flags.region : DEFAULT_REGIONS,
          agentsPerRegion: flags.agentsPerRegion,
          gpus: flags.gpus,
          ...(flags.pricesDir ? { pricesDir: flags.pricesDir } : {}),
          fresh: flags.fresh ?? false,
          logger: fileLogger(logFile, flags.logLevel),
          say,
        });
      } catch (err) {
        throw new CliError(`up failed: ${(err as Error).message} (details in ${logFile})`);
      }
      const shutdown = waitForShutdownSignal();
      await waitUntilAgentsAreSeen(stack, say);
      if (flags.json) {
        printJsonLine({
          natsUrl: stack.natsUrl,
          natsPid: stack.natsPid,
          natsAuthDir: stack.natsAuthDir,
          grpcAddress: stack.grpcAddress,
          stateDir: stack.stateDir,
          logFile,
          pricesSource: stack.pricesSource,
          agents: stack.agents,
          credentials: stack.credentials,
        });
      } else {
        print(readyText(stack, logFile));
      }
      const signal = await shutdown;
      say(`${signal}: stopping agents, scheduler and nats-server`);
      const clean = await stopWithin(() => stack.stop(), 30_000);
      if (!clean) throw new CliError("capa up: components did not stop within 30 s");
      say("stopped");
    });
}

/** Ready means the scheduler lists every agent: a job submitted right after sees the whole fleet. */
async function waitUntilAgentsAreSeen(stack: LocalStack, say: (line: string) => void): Promise<void> {
  const token = (JSON.parse(readFileSync(stack.credentials.admin, "utf8")) as { token: string }).token;
  const client = new SchedulerClient({ address: stack.grpcAddress, tenant: "", token });
  const deadline = Date.now() + 30_000;
  try {
    while (Date.now() < deadline) {
      try {
        const { agents } = await client.listAgents({ region: "", limit: 0, pageToken: "" });
        if (agents.length >= stack.agents.length) return;
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
