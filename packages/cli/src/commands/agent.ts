import { type AgentFlags, AgentMetrics, parseAgentConfig, startAgent } from "@capa/agent";
import { loadCatalog } from "@capa/catalog";
import { Command } from "commander";
import { CliError } from "../errors.js";
import { formatPrice } from "../format.js";
import { stdoutLogger } from "../local/logger.js";
import { regionPrices } from "../local/prices.js";
import { stopWithin, waitForShutdownSignal } from "../local/signals.js";
import { NKEY_OPTION_HELP, nkeySeedFrom } from "../nats-credentials.js";
import { collect, parseInteger } from "../spec.js";
import { agentEnrollCommand, agentRevokeCommand } from "./agent-enroll.js";
import { agentPriceCommand } from "./agent-price.js";

interface AgentCommandFlags extends Omit<AgentFlags, "nats"> {
  natsUrl?: string;
  natsNkey?: string;
  label: string[];
  price: string[];
  pricesDir?: string;
  metricsPort?: number;
  metricsHost?: string;
  logLevel: string;
}

export function agentCommand(): Command {
  return (
    new Command("agent")
      .description(
        "run a provider agent: advertises this machine's GPUs and prices, runs assigned tasks (agent price: change them)",
      )
      .addCommand(agentPriceCommand())
      .addCommand(agentEnrollCommand())
      .addCommand(agentRevokeCommand())
      .option("--nats-url <url>", "NATS URL(s), comma-separated (env CAPA_NATS_URL; default nats://127.0.0.1:4222)")
      .option("--nats-nkey <file>", NKEY_OPTION_HELP)
      .option("--id <agent-id>", "agent id (default: from the hostname)")
      // Not commander-mandatory: commander would demand it of `agent price get` too (it checks ancestors).
      .option("--region <region>", "region this machine is in, e.g. eu-west (required)")
      .option("--zone <zone>", "zone (default <region>-a)")
      .option("--label <key=value>", "label for node selectors (repeatable)", collect, [])
      .option(
        "--price <model=usd[/usd]>",
        "on-demand[/interruptible] price per GPU-hour, e.g. H100-80GB=2.49/1.20 (repeatable; default: catalog prices of the region)",
        collect,
        [],
      )
      .option(
        "--prices-dir <dir>",
        "price catalog for the default prices (default CAPA_PRICES_DIR or ../shared/data/prices)",
      )
      .option("--simulate-gpus <spec>", "simulate GPUs instead of running nvidia-smi, e.g. 4xH100-80GB,2xA100-40GB")
      .option("--work-dir <dir>", "where task working directories go")
      .option("--service-host <host>", "address service replicas are reached at (default 127.0.0.1)")
      .option(
        "--container-runtime <cli>",
        "container driver CLI: auto (podman, else docker, if one answers), none, podman, docker or a path",
        "auto",
      )
      .option(
        "--gpu-mode <mode>",
        "GPUs in containers: cdi (--device nvidia.com/gpu=N) or env (NVIDIA_VISIBLE_DEVICES)",
      )
      .option("--provider <name>", "provider name shown in offers")
      .option("--fabric-domain <name>", "NVLink domain of this machine (gangs prefer one domain)")
      .option("--advert-interval <duration>", "full advert period (default 10s)")
      .option("--heartbeat-interval <duration>", "heartbeat period (default 2s)")
      .option(
        "--advert-ttl <duration>",
        "how long an advert stays valid without a heartbeat (default 3 heartbeat intervals, 6s)",
      )
      .option(
        "--partition-grace <duration>",
        "the scheduler's --partition-grace (default 2m): cut off from the scheduler's state for nearly this long, the agent stops its tasks",
      )
      .option(
        "--fence-on-disconnect",
        "also stop tasks after about the advert TTL without any NATS round trip (no double run when this agent alone is cut; stops them in a whole-region NATS outage too)",
      )
      .option(
        "--metrics-port <port>",
        "serve Prometheus metrics (GPU utilisation, memory, temperature, tasks, report lag) on this port",
        parseInteger,
      )
      .option("--metrics-host <host>", "metrics listen host (default 127.0.0.1)", "127.0.0.1")
      .option("--log-level <level>", "trace, debug, info, warn, error", process.env.CAPA_LOG_LEVEL ?? "info")
      .action(async (flags: AgentCommandFlags) => {
        if (!flags.region) throw new CliError("agent needs --region, the region this machine is in (e.g. eu-west)");
        const { natsUrl, natsNkey, pricesDir, logLevel, metricsPort, metricsHost, ...rest } = flags;
        const nkeySeed = nkeySeedFrom(natsNkey);
        let config: ReturnType<typeof parseAgentConfig>;
        try {
          config = parseAgentConfig({ ...rest, ...(natsUrl ? { nats: natsUrl } : {}) });
        } catch (err) {
          throw new CliError((err as Error).message);
        }
        if (flags.price.length === 0) {
          const catalog = loadCatalog(pricesDir);
          const { prices, from } = regionPrices(catalog.entries, config.region);
          config.prices = prices;
          process.stderr.write(
            `capa agent: ${prices.length} model prices for ${from} from ${catalog.source} (e.g. ${prices
              .slice(0, 3)
              .map((p) => `${p.gpuModel} ${formatPrice(p.onDemandPerHour)}`)
              .join(", ")}); --price overrides\n`,
          );
        }
        const metrics = new AgentMetrics();
        let handle: Awaited<ReturnType<typeof startAgent>>;
        let metricsServer: Awaited<ReturnType<AgentMetrics["serve"]>> | undefined;
        try {
          handle = await startAgent({
            ...config,
            ...(nkeySeed ? { natsAuth: { ...config.natsAuth, nkeySeed } } : {}),
            logger: stdoutLogger("capa-agent", logLevel),
            metrics,
          });
        } catch (err) {
          throw new CliError(`agent failed to start: ${(err as Error).message}`);
        }
        process.stderr.write(`capa agent: ${handle.agentId} running in ${config.region}\n`);
        if (metricsPort !== undefined) {
          try {
            metricsServer = await metrics.serve(metricsHost ?? "127.0.0.1", metricsPort);
          } catch (err) {
            await handle.stop();
            throw new CliError(`agent metrics failed to start: ${(err as Error).message}`);
          }
          process.stderr.write(`capa agent: metrics on http://${metricsServer.address}/metrics\n`);
        }
        await waitForShutdownSignal();
        if (!(await stopWithin(() => handle.stop(), 30_000))) throw new CliError("agent did not stop within 30 s");
        await metricsServer?.close();
      })
  );
}
