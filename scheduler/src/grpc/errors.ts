/**
 * Maps errors to gRPC statuses at the edge: CapaError codes map one to one; store and transport failures are
 * UNAVAILABLE (retry); anything else is INTERNAL with a generic message (details go to the log, not the client).
 */

import { CapaError, type ErrorCode, type FieldViolation } from "@capa/domain";
import { status } from "@grpc/grpc-js";

const CODES: Record<ErrorCode, status> = {
  INVALID_ARGUMENT: status.INVALID_ARGUMENT,
  NOT_FOUND: status.NOT_FOUND,
  ALREADY_EXISTS: status.ALREADY_EXISTS,
  FAILED_PRECONDITION: status.FAILED_PRECONDITION,
  RESOURCE_EXHAUSTED: status.RESOURCE_EXHAUSTED,
  ABORTED: status.ABORTED,
  UNAVAILABLE: status.UNAVAILABLE,
  UNAUTHENTICATED: status.UNAUTHENTICATED,
  PERMISSION_DENIED: status.PERMISSION_DENIED,
  INTERNAL: status.INTERNAL,
};

/** NATS client failures that mean "the store is not reachable right now". */
const UNAVAILABLE_PATTERN = /timeout|timed out|no responders|connection closed|disconnect|reconnect|closed/i;

export interface MappedError {
  code: status;
  details: string;
  /** True when the error is unexpected and worth logging at error level. */
  internal: boolean;
  /** The fields at fault (INVALID_ARGUMENT), sent as a google.rpc.BadRequest. */
  violations: FieldViolation[];
}

export function mapError(err: unknown): MappedError {
  if (err instanceof CapaError)
    return { code: CODES[err.code], details: err.message, internal: false, violations: violationsIn(err) };
  if (storeUnavailable(err))
    return {
      code: status.UNAVAILABLE,
      details: "the scheduler's store is unavailable; retry",
      internal: true,
      violations: [],
    };
  return { code: status.INTERNAL, details: "internal error", internal: true, violations: [] };
}

/** Any CapaError may carry `violations` (ValidationError, the market's query errors). */
function violationsIn(err: CapaError): FieldViolation[] {
  const v = (err as { violations?: unknown }).violations;
  return Array.isArray(v)
    ? v.filter((x): x is FieldViolation => typeof x?.field === "string" && typeof x?.message === "string")
    : [];
}

/**
 * A NATS failure anywhere in the cause chain. In a cluster, a stream whose leader just died answers "no
 * responders" until a new leader is elected, which nats.js reports as JetStreamNotEnabled with that cause.
 */
function storeUnavailable(err: unknown): boolean {
  for (let e = err as Error | undefined, depth = 0; e && depth < 5; e = e.cause as Error | undefined, depth++) {
    const message = e.message ?? String(e);
    if (
      /^(TimeoutError|NoRespondersError|NoResponders|JetStreamNotEnabled|ClosedConnectionError|RequestError|ConnectionError)$/.test(
        e.name ?? "",
      ) ||
      UNAVAILABLE_PATTERN.test(message)
    )
      return true;
  }
  return false;
}
