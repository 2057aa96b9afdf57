/**
 * The auth edge, wrapped around every service at `addService` time so that no RPC can be served unchecked:
 * 1. the caller's `authorization: Bearer <key>` is checked against the in-memory key table (UNAUTHENTICATED);
 * 2. the role is checked against the permission table (PERMISSION_DENIED; unlisted methods are operator-only);
 * 3. a request whose protobuf did not decode (malformed bytes, an int64 outside ±2^53) is INVALID_ARGUMENT,
 *    never INTERNAL;
 * 4. mutating calls are audited with their answer's status;
 * 5. on a follower, calls that need the leader are forwarded to it (scheduler/src/ha; the leader audits them).
 * Handlers read the caller with `callerOf(call)` and apply tenant scoping themselves.
 */
import { authorize, type KeyTable, type MethodRule, type Principal, ruleFor, shortMethod } from "@capa/auth";
import type {
  Metadata,
  MethodDefinition,
  ServerUnaryCall,
  ServerWritableStream,
  ServiceDefinition,
  sendUnaryData,
  UntypedServiceImplementation,
} from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";
import type { AuditLog } from "../audit/audit-log.js";
import { LEADER_ADDRESS, NotLeaderError, type WriteRouter } from "../ha/write-router.js";
import { auditTarget } from "./audit-target.js";
import { mapError } from "./errors.js";
import { statusDetails } from "./status-details.js";
import type { EdgeContext } from "./unary.js";

/** What a request deserializer answers instead of throwing: grpc-js would turn a throw into INTERNAL. */
export class MalformedRequest {
  constructor(readonly reason: string) {}
}

const callers = new WeakMap<object, Principal>();

/** The authenticated caller of a call the guard let through. */
export function callerOf(call: object): Principal {
  const p = callers.get(call);
  if (!p) throw new Error("callerOf: the call did not pass the auth guard");
  return p;
}

export interface GuardDeps extends EdgeContext {
  keys: KeyTable;
  audit?: AuditLog;
  now: () => number;
  /** Sends leader-only calls from a follower to the leader; every replica serves everything itself without it. */
  writes?: WriteRouter;
}

type AnyCall = ServerUnaryCall<unknown, unknown> | ServerWritableStream<unknown, unknown>;

/** A copy of the service definition whose deserializers never throw, and the implementation wrapped. */
export function guardService(
  definition: ServiceDefinition,
  impl: UntypedServiceImplementation,
  d: GuardDeps,
): { definition: ServiceDefinition; impl: UntypedServiceImplementation } {
  const guardedDef: Record<string, MethodDefinition<unknown, unknown>> = {};
  const guardedImpl: UntypedServiceImplementation = {};
  for (const [name, method] of Object.entries(definition) as [string, MethodDefinition<unknown, unknown>][]) {
    const decode = method.requestDeserialize;
    guardedDef[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => {
        try {
          return decode(bytes);
        } catch (err) {
          return new MalformedRequest((err as Error)?.message ?? String(err));
        }
      },
    };
    const handler = impl[name];
    if (!handler) continue;
    const path = method.path;
    guardedImpl[name] = method.responseStream
      ? guardStream(path, handler as (call: ServerWritableStream<unknown, unknown>) => void, d)
      : guardUnary(method, handler as (call: ServerUnaryCall<unknown, unknown>, cb: sendUnaryData<unknown>) => void, d);
  }
  return { definition: guardedDef as ServiceDefinition, impl: guardedImpl };
}

interface Admitted {
  principal: Principal;
  rule: MethodRule;
}

/** Authenticates and authorizes; on refusal returns the status to answer (and audits a refused mutation). */
type Refusal = { code: status; details: string; metadata: Metadata };

function admit(path: string, call: AnyCall, d: GuardDeps): Admitted | Refusal {
  const method = shortMethod(path);
  let principal: Principal | undefined;
  try {
    const header = call.metadata.get("authorization")[0];
    principal = d.keys.authenticate(typeof header === "string" ? header : header?.toString());
    const rule = authorize(principal, path);
    if (call.request instanceof MalformedRequest) {
      const message = `malformed protobuf (${call.request.reason.slice(0, 200)})`;
      const details = `request: ${message}`;
      d.metrics.rpcs.inc({ method, code: String(status.INVALID_ARGUMENT) });
      const metadata = statusDetails(status.INVALID_ARGUMENT, details, [{ field: "request", message }]);
      return { code: status.INVALID_ARGUMENT, details, metadata };
    }
    callers.set(call, principal);
    return { principal, rule };
  } catch (err) {
    const mapped = mapError(err);
    d.metrics.rpcs.inc({ method, code: String(mapped.code) });
    if (principal && ruleFor(path).mutating)
      audit(d, principal, method, undefined, undefined, mapped.code, mapped.details);
    return {
      code: mapped.code,
      details: mapped.details,
      metadata: statusDetails(mapped.code, mapped.details, mapped.violations),
    };
  }
}

function guardUnary(
  definition: MethodDefinition<unknown, unknown>,
  handler: (call: ServerUnaryCall<unknown, unknown>, cb: sendUnaryData<unknown>) => void,
  d: GuardDeps,
) {
  const path = definition.path;
  const method = shortMethod(path);
  return (call: ServerUnaryCall<unknown, unknown>, answer: sendUnaryData<unknown>) => {
    const timer = d.metrics.grpcSeconds.startTimer({ method });
    const callback: sendUnaryData<unknown> = (err, res) => {
      const code = err ? ((err as { code?: status }).code ?? status.INTERNAL) : status.OK;
      timer({ code: status[code] ?? String(code) });
      answer(err, res);
    };
    const admitted = admit(path, call, d);
    if (!("principal" in admitted)) return callback(admitted);
    if (d.writes && !d.writes.servesLocally(path, admitted.rule))
      return forwardToLeader(d.writes, definition, call, callback, admitted, d);
    if (!admitted.rule.mutating) return handler(call, callback);
    handler(call, (err, res) => {
      const code = err ? ((err as { code?: status }).code ?? status.INTERNAL) : status.OK;
      const details = err ? String((err as { details?: string }).details ?? "") : "";
      void audit(d, admitted.principal, method, call.request, res, code, details).finally(() => callback(err, res));
    });
  };
}

/**
 * A follower's leader-only call: the leader's answer (it authenticates, serves and audits the call again), or
 * UNAVAILABLE naming the leader when it cannot be forwarded (audited here, as a refused mutation).
 */
function forwardToLeader(
  writes: WriteRouter,
  definition: MethodDefinition<unknown, unknown>,
  call: ServerUnaryCall<unknown, unknown>,
  callback: sendUnaryData<unknown>,
  admitted: Admitted,
  d: GuardDeps,
): void {
  const method = shortMethod(definition.path);
  const deadline = call.getDeadline();
  const until =
    deadline instanceof Date ? deadline.getTime() : Number.isFinite(deadline) ? Number(deadline) : undefined;
  writes.forward(definition, call.request, call.metadata, until).then(
    (response) => {
      d.metrics.forwardedCalls.inc({ method, outcome: "forwarded" });
      callback(null, response);
    },
    (err) => {
      if (!(err instanceof NotLeaderError)) {
        // The leader's own answer (a validation error, a conflict...): passed through unchanged.
        d.metrics.forwardedCalls.inc({ method, outcome: "leader-error" });
        return callback(err);
      }
      const mapped = mapError(err);
      d.metrics.forwardedCalls.inc({ method, outcome: "not-forwarded" });
      d.metrics.rpcs.inc({ method, code: String(mapped.code) });
      const metadata = statusDetails(mapped.code, mapped.details, []);
      if (err.leaderAddress) metadata.set(LEADER_ADDRESS, err.leaderAddress);
      const refuse = () => callback({ code: mapped.code, details: mapped.details, metadata });
      if (!admitted.rule.mutating) return refuse();
      void audit(d, admitted.principal, method, call.request, undefined, mapped.code, mapped.details).finally(refuse);
    },
  );
}

function guardStream(path: string, handler: (call: ServerWritableStream<unknown, unknown>) => void, d: GuardDeps) {
  return (call: ServerWritableStream<unknown, unknown>) => {
    const admitted = admit(path, call, d);
    if (!("principal" in admitted)) {
      call.emit("error", admitted);
      return;
    }
    handler(call);
  };
}

async function audit(
  d: GuardDeps,
  p: Principal,
  method: string,
  request: unknown,
  response: unknown,
  code: status,
  details: string,
): Promise<void> {
  if (!d.audit) return;
  const target =
    request instanceof MalformedRequest ? { target: "", tenant: "" } : auditTarget(method, request, response);
  await d.audit.append({
    atMs: d.now(),
    keyId: p.keyId,
    actor: p.name,
    role: p.role,
    tenant: p.tenant || target.tenant,
    method,
    target: target.target,
    result: status[code] ?? String(code),
    detail: details.slice(0, 300),
  });
}
