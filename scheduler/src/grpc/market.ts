/**
 * The marketplace slot (Quote, ListOffers). Another module will provide these handlers; until then both
 * answer UNIMPLEMENTED. Wire a real one through `startScheduler`'s `market` hook in scheduler.ts.
 */
import type * as pb from "@capa/api";
import { type handleUnaryCall, status } from "@grpc/grpc-js";

export interface MarketHandlers {
  quote: handleUnaryCall<pb.QuoteRequest, pb.QuoteResponse>;
  listOffers: handleUnaryCall<pb.ListOffersRequest, pb.ListOffersResponse>;
}

export const unimplementedMarket: MarketHandlers = {
  quote: (_call, callback) => callback({ code: status.UNIMPLEMENTED, details: "Quote is not available yet" }),
  listOffers: (_call, callback) => callback({ code: status.UNIMPLEMENTED, details: "ListOffers is not available yet" }),
};
