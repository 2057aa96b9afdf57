/**
 * The marketplace RPCs of JobService: Quote (price and start estimate for a spec, nothing submitted) and
 * ListOffers (the order book, aggregated by region and GPU model). Both read the placement engine's live
 * ClusterState through @capa/market; Quote's start estimate also simulates the jobs queued ahead (from the job
 * store). `startScheduler`'s `market` hook may still replace them (tests).
 */
import type * as pb from "@capa/api";
import { type JobSpec, jobSpecViolations, tenantViolations, throwIfViolations, ValidationError } from "@capa/domain";
import { orderBook, type QuoteResult, quote } from "@capa/market";
import { type handleUnaryCall, status } from "@grpc/grpc-js";
import type { Fleet } from "../agents/fleet.js";
import { offerSources, pendingJobs, runningAllocations } from "../market/sources.js";
import type { ClusterStateApi, PlacementEngineApi } from "../planner/engine.js";
import { simulate } from "../planner/simulate.js";
import type { JobRepo } from "../store/job-repo.js";
import { agentInfoToPb, explanationToPb } from "./convert.js";
import { advertisedGpuModels, offerModelFilter, specFromWire } from "./edge.js";
import { pageByOffset } from "./paging.js";
import { type EdgeContext, unary } from "./unary.js";

export interface MarketHandlers {
  quote: handleUnaryCall<pb.QuoteRequest, pb.QuoteResponse>;
  listOffers: handleUnaryCall<pb.ListOffersRequest, pb.ListOffersResponse>;
}

export const unimplementedMarket: MarketHandlers = {
  quote: (_call, callback) => callback({ code: status.UNIMPLEMENTED, details: "Quote is not available yet" }),
  listOffers: (_call, callback) => callback({ code: status.UNIMPLEMENTED, details: "ListOffers is not available yet" }),
};

export interface MarketDeps extends EdgeContext {
  cluster: ClusterStateApi;
  engine: PlacementEngineApi;
  jobs: JobRepo;
  fleet: Fleet;
  now: () => number;
}

/** Largest order-book page; a larger `limit` is refused rather than silently cut. */
export const MAX_OFFERS_LIMIT = 1000;

/** The spec of a Quote request, validated like SubmitJob's (a quote needs no command: "true" stands in). */
export function quoteSpec(req: pb.QuoteRequest, known: () => Iterable<string> = () => []): JobSpec {
  if (req.tenant !== "") throwIfViolations(tenantViolations(req.tenant));
  const spec = specFromWire(req.spec, known);
  if (!spec) throw new ValidationError([{ field: "spec", message: "is required" }]);
  const command = spec.template.command.length > 0 ? spec.template.command : ["true"];
  const full = { ...spec, template: { ...spec.template, command } } as JobSpec;
  throwIfViolations(jobSpecViolations(full));
  return full;
}

export function quoteToPb(q: QuoteResult): pb.QuoteResponse {
  return {
    feasibleOffers: q.feasibleOffers,
    regions: q.regions.map((r) => ({
      region: r.region,
      gpuModel: r.gpuModel,
      offers: r.offers,
      freeGpus: r.freeGpus,
      cheapestMicrosPerGpuHour: r.cheapestPricePerGpuHour,
      medianMicrosPerGpuHour: r.medianPricePerGpuHour,
    })),
    estimatedHourlyMicros: q.estimatedHourly,
    estimatedTotalMicros: q.estimatedTotal,
    estimatedStartUnixMs: q.estimatedStartMs ?? 0,
    reason: q.reason,
    explanation: undefined,
    startBasis: q.startBasis,
    startDetail: q.startDetail,
    queuedAhead: q.queuedAhead,
  };
}

export function marketHandlers(d: MarketDeps): MarketHandlers {
  const known = advertisedGpuModels(d.cluster);
  return {
    quote: unary(d, "Quote", (req: pb.QuoteRequest): pb.QuoteResponse => {
      const spec = quoteSpec(req, known);
      const nowMs = d.now();
      const queue = { running: runningAllocations(d.cluster, d.jobs), pending: pendingJobs(d.jobs) };
      const q = quote(spec, offerSources(d.cluster), queue, nowMs);
      const explanation = simulate(d.engine, d.cluster, { spec, profile: "", seed: 1 }, nowMs);
      return { ...quoteToPb(q), explanation: explanationToPb({ ...explanation, jobId: "" }) };
    }),
    listOffers: unary(d, "ListOffers", async (req: pb.ListOffersRequest): Promise<pb.ListOffersResponse> => {
      if (req.limit > MAX_OFFERS_LIMIT)
        throw new ValidationError([{ field: "limit", message: `must be at most ${MAX_OFFERS_LIMIT}` }]);
      if (req.regionGlob.length > 128)
        throw new ValidationError([{ field: "region_glob", message: "must be at most 128 characters" }]);
      if (req.gpuModel.length > 128)
        throw new ValidationError([{ field: "gpu_model", message: "must be at most 128 characters" }]);
      const nowMs = d.now();
      const sources = offerSources(d.cluster);
      const filter = {
        gpuModel: offerModelFilter(req.gpuModel, known),
        minVramMib: req.minVramMib,
        regionGlob: req.regionGlob,
        maxPricePerGpuHour: req.maxPriceMicrosPerGpuHour,
        interruptible: req.interruptible,
      };
      const page = await pageByOffset((n) => orderBook(sources, filter, { by: req.sortBy, limit: n }, nowMs), {
        pageToken: req.pageToken,
        size: req.limit,
        filter: ["offers", filter, req.sortBy, req.raw],
      });
      const groups = page.items;
      const offers: pb.Offer[] = groups.map((g) => ({
        region: g.region,
        gpuModel: g.gpuModel,
        vramMib: g.vramMib,
        agents: g.agents,
        totalGpus: g.totalGpus,
        freeGpus: g.freeGpus,
        minMicrosPerGpuHour: g.minPricePerGpuHour,
        medianMicrosPerGpuHour: g.medianPricePerGpuHour,
        freshestAdvertAgeMs: g.freshestAdvertAgeMs,
        interruptible: g.interruptible,
        simulated: g.simulated,
      }));
      const nextPageToken = page.nextPageToken;
      if (!req.raw) return { offers, agents: [], nextPageToken };
      // The agents behind the listed groups (after filter and limit), each once.
      const shown = new Set(groups.flatMap((g) => g.agentIds));
      const agents = d.fleet
        .list("")
        .filter((a) => shown.has(a.record.advert.agentId))
        .map(agentInfoToPb);
      return { offers, agents, nextPageToken };
    }),
  };
}
