/** Wraps a promise-returning handler as a grpc-js unary handler: errors are mapped, counted and logged. */
import type { handleUnaryCall, ServerUnaryCall, ServerWritableStream, sendUnaryData } from "@grpc/grpc-js";
import type { Logger } from "pino";
import type { SchedulerMetrics } from "../metrics.js";
import { mapError } from "./errors.js";
import { statusDetails } from "./status-details.js";

export interface EdgeContext {
  logger: Logger;
  metrics: SchedulerMetrics;
}

export function unary<Req, Res>(
  ctx: EdgeContext,
  method: string,
  fn: (request: Req, call: ServerUnaryCall<Req, Res>) => Promise<Res> | Res,
): handleUnaryCall<Req, Res> {
  return (call, callback) => {
    Promise.resolve()
      .then(() => fn(call.request, call))
      .then(
        (response) => {
          ctx.metrics.rpcs.inc({ method, code: "OK" });
          callback(null, response);
        },
        (err) => {
          const mapped = mapError(err);
          ctx.metrics.rpcs.inc({ method, code: String(mapped.code) });
          if (mapped.internal) ctx.logger.error({ err, method }, "RPC failed");
          callback({
            code: mapped.code,
            details: mapped.details,
            metadata: statusDetails(mapped.code, mapped.details, mapped.violations),
          });
        },
      );
  };
}

/** Answers a unary call with a mapped error status (for handlers not built with `unary`). */
export function failUnary<Res>(ctx: EdgeContext, method: string, callback: sendUnaryData<Res>, err: unknown): void {
  const mapped = mapError(err);
  ctx.metrics.rpcs.inc({ method, code: String(mapped.code) });
  if (mapped.internal) ctx.logger.error({ err, method }, "RPC failed");
  callback({
    code: mapped.code,
    details: mapped.details,
    metadata: statusDetails(mapped.code, mapped.details, mapped.violations),
  });
}

/** Ends a server stream with a mapped error status. */
export function failStream<Req, Res>(
  ctx: EdgeContext,
  method: string,
  call: ServerWritableStream<Req, Res>,
  err: unknown,
): void {
  const mapped = mapError(err);
  ctx.metrics.rpcs.inc({ method, code: String(mapped.code) });
  if (mapped.internal) ctx.logger.error({ err, method }, "stream failed");
  if (!call.cancelled)
    call.emit("error", {
      code: mapped.code,
      details: mapped.details,
      metadata: statusDetails(mapped.code, mapped.details, mapped.violations),
    });
}

/** Writes one message, waiting for the transport to drain when its buffer is full. */
export async function writeWithBackpressure<Req, Res>(
  call: ServerWritableStream<Req, Res>,
  message: Res,
): Promise<void> {
  if (call.cancelled) return;
  if (!call.write(message)) {
    await new Promise<void>((resolve) => {
      const done = () => {
        call.off("drain", done);
        call.off("cancelled", done);
        resolve();
      };
      call.on("drain", done);
      call.on("cancelled", done);
    });
  }
}
