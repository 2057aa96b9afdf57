/**
 * `capa agent price set|get`: a provider changes a running agent's prices without restarting it (request-reply
 * on the agent's NATS control subject, through @capa/agent's setAgentPrices), and reads what the scheduler
 * sees it advertise. Running allocations keep the price locked at their placement; later placements see the
 * new one.
 *
 * `capa agent` itself runs an agent and owns `--region` and `--nats-url`; commander hands those options to the
 * parent wherever they appear, so these subcommands read them through optsWithGlobals().
 */
import { parsePriceChangeList, setAgentPrices } from "@capa/agent";
import { connectBus, DEFAULT_NATS_URL, inboxPrefixFor, type NatsConnection } from "@capa/bus";
import type { GpuPrice } from "@capa/domain";
import { Command } from "commander";
import { jsonOption, print, printJson, withScheduler } from "../context.js";
import { CliError } from "../errors.js";
import { formatPrice, renderTable } from "../format.js";
import { nkeySeedFrom } from "../nats-credentials.js";

interface PriceSetFlags {
  agent: string;
  region?: string;
  natsUrl?: string;
  nats?: string;
  natsNkey?: string;
  replace?: boolean;
  timeout?: number;
  json?: boolean;
}

export function agentPriceCommand(): Command {
  const price = new Command("price").description("change or show a running agent's prices per GPU-hour");
  price.addCommand(priceSetCommand());
  price.addCommand(priceGetCommand());
  return price;
}

/** A price list as a table: model, on-demand and interruptible ("spot") price per GPU-hour. */
export function renderPriceList(prices: readonly GpuPrice[]): string {
  if (prices.length === 0) return "no prices (the agent offers nothing)";
  return renderTable(
    ["MODEL", "$/GPU-H", "SPOT $/GPU-H"],
    prices.map((p) => [p.gpuModel, formatPrice(p.onDemandPerHour), formatPrice(p.interruptiblePerHour)]),
    { rightAlign: [1, 2] },
  );
}

function priceSetCommand(): Command {
  return jsonOption(
    new Command("set")
      .description(
        "set prices on a running agent: listed models change or are added, others stay (--replace: the list is all)",
      )
      .argument("[prices...]", "MODEL=USD[/USD_INTERRUPTIBLE], e.g. H100-80GB=2.10/1.00 (no /USD withdraws spot)")
      .requiredOption("--agent <id>", "the agent's id (capa agents lists them)")
      .option("--region <region>", "the agent's region (required)")
      .option("--nats-url <url>", "NATS URL(s) (env CAPA_NATS_URL; default nats://127.0.0.1:4222)")
      .option("--nats <url>", "same as --nats-url")
      .option("--replace", "the listed prices are the whole list: models left out are withdrawn"),
  ).action(async (args: string[], _flags: PriceSetFlags, self: Command) => {
    const flags = self.optsWithGlobals<PriceSetFlags>();
    if (!flags.region) throw new CliError("agent price set needs --region (the agent's region)");
    if (args.length === 0 && !flags.replace) {
      throw new CliError("agent price set needs at least one MODEL=USD[/USD] (or --replace to withdraw every price)");
    }
    let prices: GpuPrice[];
    try {
      prices = parsePriceChangeList(args.join(","));
    } catch (err) {
      throw new CliError((err as Error).message);
    }
    const url = flags.nats ?? flags.natsUrl ?? process.env.CAPA_NATS_URL ?? DEFAULT_NATS_URL;
    const region = flags.region;
    // With per-agent NATS users the provider uses the agent's own seed: it may publish to that agent's control
    // subject and read replies only in that agent's inbox.
    const nkeySeed = nkeySeedFrom(flags.natsNkey);
    const auth = nkeySeed ? { nkeySeed, inboxPrefix: inboxPrefixFor(flags.agent) } : {};
    const now = await withNats(url, auth, async (nc) => {
      try {
        return await setAgentPrices(nc, region, flags.agent, prices, { ...(flags.replace ? { replace: true } : {}) });
      } catch (err) {
        const message = (err as Error).message;
        // Nobody listens on that agent's control subject: most often a wrong --agent or --region.
        if (/no responders/i.test(message)) {
          throw new CliError(
            `no agent ${flags.agent} in region ${region} answers (check --agent and --region: capa agents)`,
          );
        }
        // The broker refused the control subject: these credentials belong to another agent or region.
        if (/permissions violation/i.test(message)) {
          throw new CliError(
            `these NATS credentials may not reach agent ${flags.agent} in region ${region} (check --agent, --region and --nats-nkey)`,
          );
        }
        throw err;
      }
    });
    if (flags.json) printJson({ agentId: flags.agent, region, prices: now });
    else print(`agent ${flags.agent} (${region}) now advertises:\n${renderPriceList(now)}`);
  });
}

function priceGetCommand(): Command {
  return jsonOption(
    new Command("get")
      .description("the prices the scheduler has from the agent's latest advert")
      .requiredOption("--agent <id>", "the agent's id"),
  ).action(async (_flags: { agent: string; json?: boolean }, self: Command) => {
    const flags = self.optsWithGlobals<{ agent: string; json?: boolean }>();
    await withScheduler(self, async (client) => {
      const { agents } = await client.listAgents({ region: "", limit: 0, pageToken: "" });
      const agent = agents.find((a) => a.agentId === flags.agent);
      if (!agent) throw new CliError(`agent ${flags.agent} is not known to the scheduler at ${client.options.address}`);
      const prices: GpuPrice[] = agent.prices.map((p) => ({
        gpuModel: p.gpuModel,
        onDemandPerHour: p.onDemandMicrosPerHour,
        interruptiblePerHour: p.interruptibleMicrosPerHour,
      }));
      if (flags.json) printJson({ agentId: agent.agentId, region: agent.region, prices });
      else print(`agent ${agent.agentId} (${agent.region}) advertises:\n${renderPriceList(prices)}`);
    });
  });
}

/** One short-lived NATS connection: no reconnecting, closed whatever happens. */
async function withNats<T>(
  url: string,
  auth: { nkeySeed?: string; inboxPrefix?: string },
  fn: (nc: NatsConnection) => Promise<T>,
): Promise<T> {
  let nc: NatsConnection;
  try {
    nc = await connectBus({ servers: url, name: "capa-cli", maxReconnectAttempts: 0, timeoutMs: 5_000, ...auth });
  } catch (err) {
    const message = (err as Error).message;
    // A server with capa's authorization refuses clients without credentials: say which ones it wants.
    if (/authorization/i.test(message) && !auth.nkeySeed) {
      throw new CliError(`${message} (NATS wants credentials: --nats-nkey <the agent's seed file> or CAPA_NATS_NKEY)`);
    }
    throw new CliError(`${message} (CAPA_NATS_URL or --nats-url)`);
  }
  try {
    return await fn(nc);
  } catch (err) {
    throw err instanceof CliError ? err : new CliError((err as Error).message);
  } finally {
    await nc.close().catch(() => {});
  }
}
