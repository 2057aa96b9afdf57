import { Command } from "commander";
import { jsonOption, print, printJson, withScheduler } from "../context.js";
import { GrpcCallError, grpcStatus } from "../grpc.js";
import { renderAgentOffersTable, renderOffersTable } from "../render.js";
import { parseInteger, parseMoney, parseNumber } from "../spec.js";

interface OffersFlags {
  gpuModel?: string;
  minVram?: number;
  region?: string;
  maxPrice?: number;
  interruptible?: boolean;
  sort?: string;
  limit?: number;
  raw?: boolean;
  json?: boolean;
}

export function offersCommand(): Command {
  return jsonOption(new Command("offers").description("the order book: GPU capacity and prices by region and model"))
    .option("--gpu-model <model>", "only this GPU model")
    .option("--min-vram <GiB>", "only GPUs with at least this much memory", parseNumber)
    .option("--region <glob>", "regions matching a glob, e.g. 'eu-*'")
    .option("--max-price <usd>", "only offers at or below this price per GPU-hour", parseMoney)
    .option("--interruptible", "price interruptible (spot) capacity instead of on-demand")
    .option("--sort <key>", "price (default), -price, free, region, model, vram")
    .option("--limit <n>", "at most this many rows", parseInteger)
    .option("--raw", "also list each agent's advert")
    .action(async (flags: OffersFlags, self: Command) => {
      await withScheduler(self, async (client) => {
        try {
          const answer = await client.listOffers({
            gpuModel: flags.gpuModel ?? "",
            minVramMib: Math.round((flags.minVram ?? 0) * 1024),
            regionGlob: flags.region ?? "",
            maxPriceMicrosPerGpuHour: flags.maxPrice ?? 0,
            interruptible: flags.interruptible ?? false,
            sortBy: flags.sort ?? "",
            limit: flags.limit ?? 0,
            raw: flags.raw ?? false,
          });
          if (flags.json) printJson(answer);
          else {
            print(renderOffersTable(answer.offers));
            if (flags.raw && answer.agents.length > 0) print(`\n${renderAgentOffersTable(answer.agents)}`);
          }
        } catch (err) {
          // A scheduler without the order book still knows its agents: show their GPUs and prices instead.
          if (!(err instanceof GrpcCallError) || err.code !== grpcStatus.UNIMPLEMENTED) throw err;
          const { agents } = await client.listAgents({ region: "" });
          if (flags.json) printJson({ offers: [], agents, source: "ListAgents" });
          else print(renderAgentOffersTable(agents));
        }
      });
    });
}
