/**
 * A CPU fix for @nats-io/nats-core 3.x: every request that gets its answer allocates an Error and throws it away.
 * `RequestOne.resolver` settles the request's promise and then calls `cancel()`, whose last step is
 * `deferred.reject(new RequestError("cancelled"))`: a no-op on a promise already settled, but the Error is built
 * (stack capture included) first. That is one stack capture per KV get/put and JetStream publish, measured at
 * 3 % of the scheduler's CPU under `npm run bench:e2e` even with `noAsyncTraces`.
 *
 * The replacement does what `resolver` does, then what `cancel()` does except the reject of the promise it has
 * just settled: stop the timer and leave the mux. A real cancel (`cancel()` from elsewhere) is unchanged. Applied
 * only when the class still has the shape read here (a later nats.js may fix or change it; then nothing is done).
 */
import { RequestError, RequestOne, TimeoutError } from "@nats-io/nats-core/internal";

interface RequestOneShape {
  timer?: { cancel(): void };
  ctx?: Error;
  deferred: { resolve(v: unknown): void; reject(e: unknown): void };
  mux: { cancel(r: unknown): void };
  resolver(err: Error | null, msg: unknown): void;
  cancel(err?: Error): void;
}

let installed = false;

export function installRequestFix(): void {
  if (installed) return;
  installed = true;
  const proto = RequestOne?.prototype as unknown as RequestOneShape | undefined;
  if (typeof proto?.resolver !== "function" || typeof proto.cancel !== "function") return;
  // Only the version whose source this mirrors: its resolver ends in `this.cancel()` after settling.
  const source = Function.prototype.toString.call(proto.resolver);
  if (!/this\.deferred\.resolve\(msg\)[\s\S]*this\.cancel\(\)/.test(source)) return;
  proto.resolver = function (this: RequestOneShape, err: Error | null, msg: unknown): void {
    this.timer?.cancel();
    if (err) {
      let reason: Error = err;
      // As the original: a timeout keeps its own stack; anything else is a RequestError (with the caller's stack
      // when async traces are on).
      if (!(err instanceof TimeoutError)) {
        if (this.ctx) {
          this.ctx.message = err.message;
          this.ctx.cause = err;
          reason = this.ctx;
        } else reason = new RequestError(err.message, { cause: err });
      }
      this.deferred.reject(reason);
    } else this.deferred.resolve(msg);
    this.mux.cancel(this);
  };
}
