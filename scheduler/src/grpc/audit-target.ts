/**
 * What an audited call acted on, in a few words, from its request and answer. Only ids and names: never a spec,
 * an env value, a policy document or a token, so an audit entry cannot carry a secret.
 */
type Msg = Record<string, unknown> | undefined;

const str = (v: unknown): string => (typeof v === "string" ? v.slice(0, 128) : "");
const obj = (v: unknown): Msg => (typeof v === "object" && v !== null ? (v as Record<string, unknown>) : undefined);

export function auditTarget(method: string, request: unknown, response: unknown): { target: string; tenant: string } {
  const req = obj(request);
  const res = obj(response);
  switch (method) {
    case "JobService/SubmitJob": {
      const job = obj(res?.job);
      const tenant = str(job?.tenant) || str(req?.tenant);
      return { target: job ? `job ${str(job.id)}` : `request ${str(req?.requestId)}`, tenant };
    }
    case "JobService/CancelJob":
      return { target: `job ${str(req?.jobId)}`, tenant: str(obj(res?.job)?.tenant) };
    case "OperatorService/DrainAgent":
      return { target: `agent ${str(req?.agentId)} ${req?.drain ? "drain" : "undrain"}`, tenant: "" };
    case "OperatorService/SetPolicy":
      return { target: `policy ${str(req?.profile) || "(document)"}`, tenant: "" };
    case "BillingService/SetTenantLimits": {
      const tenant = str(obj(req?.limits)?.tenant);
      return { target: `limits of tenant ${tenant}`, tenant };
    }
    case "AuthService/CreateKey": {
      const key = obj(res?.key);
      return {
        target: `key ${str(key?.keyId) || "(none)"} role ${str(req?.role)} name ${str(req?.name)}`,
        tenant: str(req?.tenant),
      };
    }
    case "AuthService/RevokeKey":
      return { target: `key ${str(req?.keyId)}`, tenant: str(obj(res?.key)?.tenant) };
    case "AuthService/SetTenantPolicy": {
      const tenant = str(obj(req?.policy)?.tenant);
      return { target: `policy of tenant ${tenant}`, tenant };
    }
    default:
      return { target: "", tenant: "" };
  }
}
