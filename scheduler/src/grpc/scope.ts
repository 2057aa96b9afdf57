/**
 * Tenant scoping at the edge: a caller sees its own tenant's jobs (operators see all); another tenant's job is
 * answered exactly like a job that does not exist, so ids leak nothing. Secret env values are masked in every job
 * the API returns.
 */
import type * as pb from "@capa/api";
import { actingTenant, mayReadTenant, type Principal } from "@capa/auth";
import { jobToPb } from "@capa/bus";
import { type Job, NotFoundError } from "@capa/domain";
import type { ServerUnaryCall, sendUnaryData, UntypedServiceImplementation } from "@grpc/grpc-js";
import { mapError } from "./errors.js";
import { callerOf } from "./guard.js";
import { statusDetails } from "./status-details.js";

export const SECRET_MASK = "***";

export function requireVisible(caller: Principal, job: Job): Job {
  if (!mayReadTenant(caller, job.tenant)) throw new NotFoundError(`job ${job.id} not found`);
  return job;
}

/** A job as the API shows it: the values of its secret env entries replaced by `***`. */
export function publicJobToPb(job: Job): pb.Job {
  const out = jobToPb(job);
  const secret = job.spec.template.secretEnvNames;
  if (secret?.length && out.spec?.template) {
    const env = { ...out.spec.template.env };
    for (const name of secret) if (Object.hasOwn(env, name)) env[name] = SECRET_MASK;
    out.spec.template.env = env;
  }
  return out;
}

/**
 * For a service whose every request names its tenant in a top-level `tenant` field (ServiceService): the field is
 * set to the tenant the caller acts for before the handler runs, so a tenant key only ever reaches its own
 * tenant's records, and naming another is PERMISSION_DENIED. Unary handlers only.
 */
export function scopedByTenantField(impl: object): UntypedServiceImplementation {
  const out: UntypedServiceImplementation = {};
  for (const [name, handler] of Object.entries(impl)) {
    out[name] = (call: ServerUnaryCall<{ tenant: string }, unknown>, callback: sendUnaryData<unknown>) => {
      try {
        call.request.tenant = actingTenant(callerOf(call), call.request.tenant, "");
      } catch (err) {
        const mapped = mapError(err);
        return callback({
          code: mapped.code,
          details: mapped.details,
          metadata: statusDetails(mapped.code, mapped.details, mapped.violations),
        });
      }
      (handler as (c: typeof call, cb: typeof callback) => void)(call, callback);
    };
  }
  return out;
}
