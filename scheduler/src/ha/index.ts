/** Scheduler HA: which replica serves a write, and how a follower gets it there (see write-router.ts). */
import { hostname } from "node:os";

export {
  FORWARDED_BY,
  LEADER_ADDRESS,
  type LeaderView,
  NotLeaderError,
  needsLeader,
  WriteRouter,
} from "./write-router.js";

/**
 * The address written into the lease for followers to forward to: the configured one, else the bound address
 * with a wildcard host (0.0.0.0, ::) replaced by this host's name, which peers on one network resolve.
 */
export function advertisedAddress(bound: string, configured?: string): string {
  if (configured) return configured;
  const at = bound.lastIndexOf(":");
  const host = bound.slice(0, at).replace(/^\[|\]$/g, "");
  return host === "0.0.0.0" || host === "::" || host === "" ? `${hostname()}:${bound.slice(at + 1)}` : bound;
}
