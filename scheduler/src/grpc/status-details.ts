/**
 * gRPC's rich error model at the edge: a failed call's trailers carry `grpc-status-details-bin`, an encoded
 * google.rpc.Status with the same code and readable message as the call, plus a google.rpc.BadRequest listing each
 * field violation, so clients in any language get the field paths without parsing the message.
 */
import { Any, BadRequest, RpcStatus } from "@capa/api";
import type { FieldViolation } from "@capa/domain";
import { Metadata, type status } from "@grpc/grpc-js";

export const STATUS_DETAILS_KEY = "grpc-status-details-bin";
export const BAD_REQUEST_TYPE_URL = "type.googleapis.com/google.rpc.BadRequest";

/** Trailers for a failure: the Status with a BadRequest when there are violations; empty otherwise. */
export function statusDetails(code: status, message: string, violations: readonly FieldViolation[]): Metadata {
  const metadata = new Metadata();
  if (violations.length === 0) return metadata;
  const badRequest = BadRequest.encode({
    fieldViolations: violations.map((v) => ({ field: v.field, description: v.message })),
  }).finish();
  const details = Any.fromPartial({ typeUrl: BAD_REQUEST_TYPE_URL, value: Buffer.from(badRequest) });
  metadata.set(STATUS_DETAILS_KEY, Buffer.from(RpcStatus.encode({ code, message, details: [details] }).finish()));
  return metadata;
}

/** The field violations of a failed call's trailers (clients and tests); [] when there are none. */
export function violationsOf(metadata: Metadata | undefined): FieldViolation[] {
  const raw = metadata?.get(STATUS_DETAILS_KEY)[0];
  if (!raw || typeof raw === "string") return [];
  const st = RpcStatus.decode(raw);
  return st.details
    .filter((d) => d.typeUrl === BAD_REQUEST_TYPE_URL)
    .flatMap((d) =>
      BadRequest.decode(d.value).fieldViolations.map((v) => ({ field: v.field, message: v.description })),
    );
}
