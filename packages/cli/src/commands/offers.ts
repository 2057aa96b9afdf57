import { Command } from "commander";
import { jsonOption, print, printJson, withScheduler } from "../context.js";
import { CliError } from "../errors.js";
import { GrpcCallError, grpcStatus } from "../grpc.js";
import { renderAgentOffersTable, renderOffersTable } from "../render.js";
import { parseInteger, parseMoney, parseNumber, parseOfferSort } from "../spec.js";

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
    .option(
      "--sort <key>",
      "price (cheapest first, default), free (most free GPUs), region, model, vram (largest), age (freshest); -KEY reverses",
      parseOfferSort,
    )
    .option("--limit <n>", "at most this many rows (0 = all)", parseInteger)
    .option("--raw", "also list each agent's advert")
    .action(async (flags: OffersFlags, self: Command) => {
      if (flags.limit !== undefined && flags.limit < 0) throw new CliError("--limit must not be negative");
      if (flags.minVram !== undefined && flags.minVram < 0) throw new CliError("--min-vram must not be negative");
      if (flags.maxPrice !== undefined && flags.maxPrice < 0) throw new CliError("--max-price must not be negative");
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
            pageToken: "",
          });
          if (flags.json) printJson(answer);
          else {
            print(renderOffersTable(answer.offers));
            if (flags.raw && answer.agents.length > 0) print(`\n${renderAgentOffersTable(answer.agents)}`);
          }
        } catch (err) {
          // An older scheduler without the order book still knows its agents: show their GPUs and prices instead.
          if (!(err instanceof GrpcCallError) || err.code !== grpcStatus.UNIMPLEMENTED) throw err;
          process.stderr.write("capa: this scheduler has no ListOffers; showing each agent's GPUs and prices\n");
          const { agents } = await client.listAgents({ region: "", limit: 0, pageToken: "" });
          if (flags.json) printJson({ offers: [], agents, source: "ListAgents" });
          else print(renderAgentOffersTable(agents));
        }
      });
    });
}
