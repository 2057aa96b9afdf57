/**
 * The CLI's only door to the scheduler: client options from flags and environment, a promise-based facade
 * over the generated JobService/OperatorService/BillingService clients, and the mapping from gRPC status to one-line
 * reasons a person can act on.
 */

import { readFileSync } from "node:fs";
import * as api from "@capa/api";
import {
  type CallOptions,
  type ClientReadableStream,
  credentials,
  Metadata,
  type ServiceError,
  status,
} from "@grpc/grpc-js";
import { type CredentialsFile, readCredentials } from "./credentials.js";
import { CliError, oneLine } from "./errors.js";

export const DEFAULT_GRPC_ADDR = "127.0.0.1:50051";
const UNARY_TIMEOUT_MS = 30_000;

export interface ClientTls {
  /** PEM of the CA that signed the scheduler's certificate (default: the system roots). */
  caFile?: string;
  /** Client certificate and key for mTLS. */
  certFile?: string;
  keyFile?: string;
}

export interface ClientOptions {
  address: string;
  /**
   * The tenant named in requests: "" lets the scheduler take it from the credential (a tenant key acts for its own
   * tenant); an operator names the tenant it acts for with --tenant / CAPA_TENANT.
   */
  tenant: string;
  /** Sent as `authorization: Bearer <token>` on every call. */
  token?: string;
  /** TLS to the scheduler; plaintext when absent. */
  tls?: ClientTls;
}

/**
 * Flags win over the environment, the environment over the credentials file, the file over defaults. The token is
 * CAPA_TOKEN, else the credentials file's (CAPA_CREDENTIALS or ~/.config/capa/credentials).
 */
export function clientOptions(
  flags: { addr?: string; tenant?: string },
  env: NodeJS.ProcessEnv = process.env,
  credentials: (env: NodeJS.ProcessEnv) => CredentialsFile | undefined = readCredentials,
): ClientOptions {
  const envToken = env.CAPA_TOKEN?.trim();
  const file = envToken ? undefined : credentials(env);
  const token = envToken || file?.token;
  const tlsOn = env.CAPA_TLS === "1" || env.CAPA_TLS === "true" || !!env.CAPA_TLS_CA;
  const tls: ClientTls = {
    ...(env.CAPA_TLS_CA ? { caFile: env.CAPA_TLS_CA } : {}),
    ...(env.CAPA_TLS_CLIENT_CERT ? { certFile: env.CAPA_TLS_CLIENT_CERT } : {}),
    ...(env.CAPA_TLS_CLIENT_KEY ? { keyFile: env.CAPA_TLS_CLIENT_KEY } : {}),
  };
  return {
    address: flags.addr || env.CAPA_GRPC_ADDR || file?.address || DEFAULT_GRPC_ADDR,
    tenant: flags.tenant || env.CAPA_TENANT || "",
    ...(token ? { token } : {}),
    ...(tlsOn ? { tls } : {}),
  };
}

/**
 * grpc-js passes the target host as the TLS server name, and Node warns (DEP0123) when that is an IP address,
 * although the certificate is still checked against the IP (its subjectAltName). The CLI's stderr is its one-line
 * error contract, so that one warning is dropped.
 */
function dropIpServernameWarning(): void {
  const emit = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = ((warning: unknown, ...rest: unknown[]) => {
    const code = typeof rest[0] === "object" ? (rest[0] as { code?: string })?.code : rest[1];
    if (code === "DEP0123") return;
    emit(warning, ...rest);
  }) as typeof process.emitWarning;
}

function channelCredentials(tls: ClientTls | undefined) {
  if (!tls) return credentials.createInsecure();
  dropIpServernameWarning();
  const read = (path: string | undefined, what: string) => {
    if (!path) return null;
    try {
      return readFileSync(path);
    } catch (err) {
      throw new CliError(`cannot read the TLS ${what} ${path}: ${(err as Error).message}`);
    }
  };
  if (!!tls.certFile !== !!tls.keyFile)
    throw new CliError("CAPA_TLS_CLIENT_CERT and CAPA_TLS_CLIENT_KEY go together (mTLS)");
  return credentials.createSsl(read(tls.caFile, "CA"), read(tls.keyFile, "key"), read(tls.certFile, "certificate"));
}

/** Why a call failed, in one line, naming what to do where there is something to do. */
export function describeGrpcError(
  err: { code?: number; details?: string; message?: string },
  context: { method: string; address: string },
): string {
  const details = oneLine(err.details || err.message || "");
  const unreachable = `cannot reach the scheduler at ${context.address} (CAPA_GRPC_ADDR)`;
  switch (err.code) {
    case status.INVALID_ARGUMENT:
      return `invalid argument: ${details}`;
    case status.NOT_FOUND:
      return `not found: ${details}`;
    case status.ALREADY_EXISTS:
      return `already exists: ${details}`;
    case status.FAILED_PRECONDITION:
      return `failed precondition: ${details}`;
    case status.RESOURCE_EXHAUSTED:
      return `resource exhausted: ${details}`;
    case status.ABORTED:
      return `aborted (conflict, retry): ${details}`;
    case status.UNAUTHENTICATED:
      return `unauthenticated: ${details} (set CAPA_TOKEN or CAPA_CREDENTIALS)`;
    case status.PERMISSION_DENIED:
      return `permission denied: ${details}`;
    case status.UNIMPLEMENTED:
      return `the scheduler at ${context.address} does not implement ${context.method}`;
    case status.DEADLINE_EXCEEDED:
      return `the scheduler at ${context.address} did not answer ${context.method} in time`;
    case status.UNAVAILABLE:
      // grpc-js reports a refused or unresolvable connection as UNAVAILABLE too; a reachable server that
      // answers UNAVAILABLE (its store is down) says so in its own words, which are worth showing.
      return isConnectFailure(details) ? unreachable : `scheduler unavailable (retry): ${details}`;
    default:
      return `${context.method} failed: ${details || "unknown error"}`;
  }
}

function isConnectFailure(details: string): boolean {
  return (
    details === "" ||
    /No connection established|ECONNREFUSED|ECONNRESET|ENOTFOUND|EHOSTUNREACH|Name resolution|getaddrinfo|failed to connect|Connection dropped/i.test(
      details,
    )
  );
}

type Callback<Res> = (err: ServiceError | null, res: Res) => void;
type Unary<Req, Res> = (req: Req, md: Metadata, options: Partial<CallOptions>, cb: Callback<Res>) => unknown;
type ServerStream<Req, Res> = (req: Req, md: Metadata) => ClientReadableStream<Res>;

/** A connection to one scheduler; every method rejects with a CliError carrying a one-line reason. */
export class SchedulerClient {
  private readonly jobs: api.JobServiceClient;
  private readonly operator: api.OperatorServiceClient;
  private readonly billing: api.BillingServiceClient;
  private readonly services: api.ServiceServiceClient;
  private readonly authClient: api.AuthServiceClient;
  private readonly auditClient: api.AuditServiceClient;

  constructor(readonly options: ClientOptions) {
    const creds = channelCredentials(options.tls);
    this.jobs = new api.JobServiceClient(options.address, creds);
    this.operator = new api.OperatorServiceClient(options.address, creds);
    this.billing = new api.BillingServiceClient(options.address, creds);
    this.services = new api.ServiceServiceClient(options.address, creds);
    this.authClient = new api.AuthServiceClient(options.address, creds);
    this.auditClient = new api.AuditServiceClient(options.address, creds);
  }

  submitJob = (req: api.SubmitJobRequest) => this.unary("SubmitJob", this.jobs.submitJob.bind(this.jobs), req);
  getJob = (req: api.GetJobRequest) => this.unary("GetJob", this.jobs.getJob.bind(this.jobs), req);
  listJobs = (req: api.ListJobsRequest) => this.unary("ListJobs", this.jobs.listJobs.bind(this.jobs), req);
  cancelJob = (req: api.CancelJobRequest) => this.unary("CancelJob", this.jobs.cancelJob.bind(this.jobs), req);
  quote = (req: api.QuoteRequest) => this.unary("Quote", this.jobs.quote.bind(this.jobs), req);
  listOffers = (req: api.ListOffersRequest) => this.unary("ListOffers", this.jobs.listOffers.bind(this.jobs), req);
  getVersion = (req: api.GetVersionRequest) => this.unary("GetVersion", this.jobs.getVersion.bind(this.jobs), req);
  watchJob = (req: api.WatchJobRequest) => this.stream("WatchJob", this.jobs.watchJob.bind(this.jobs), req);
  streamLogs = (req: api.StreamLogsRequest) => this.stream("StreamLogs", this.jobs.streamLogs.bind(this.jobs), req);

  listAgents = (req: api.ListAgentsRequest) =>
    this.unary("ListAgents", this.operator.listAgents.bind(this.operator), req);
  drainAgent = (req: api.DrainAgentRequest) =>
    this.unary("DrainAgent", this.operator.drainAgent.bind(this.operator), req);
  getPolicy = (req: api.GetPolicyRequest) => this.unary("GetPolicy", this.operator.getPolicy.bind(this.operator), req);
  setPolicy = (req: api.SetPolicyRequest) => this.unary("SetPolicy", this.operator.setPolicy.bind(this.operator), req);
  explainJob = (req: api.ExplainJobRequest) =>
    this.unary("ExplainJob", this.operator.explainJob.bind(this.operator), req);
  simulate = (req: api.SimulateRequest) => this.unary("Simulate", this.operator.simulate.bind(this.operator), req);

  getInvoice = (req: api.GetInvoiceRequest) =>
    this.unary("GetInvoice", this.billing.getInvoice.bind(this.billing), req);
  getEarnings = (req: api.GetEarningsRequest) =>
    this.unary("GetEarnings", this.billing.getEarnings.bind(this.billing), req);
  getReceipt = (req: api.GetReceiptRequest) =>
    this.unary("GetReceipt", this.billing.getReceipt.bind(this.billing), req);
  listReceipts = (req: api.ListReceiptsRequest) =>
    this.unary("ListReceipts", this.billing.listReceipts.bind(this.billing), req);
  getSigningKey = (req: api.GetSigningKeyRequest) =>
    this.unary("GetSigningKey", this.billing.getSigningKey.bind(this.billing), req);
  setTenantLimits = (req: api.SetTenantLimitsRequest) =>
    this.unary("SetTenantLimits", this.billing.setTenantLimits.bind(this.billing), req);
  getTenantLimits = (req: api.GetTenantLimitsRequest) =>
    this.unary("GetTenantLimits", this.billing.getTenantLimits.bind(this.billing), req);

  applyService = (req: api.ApplyServiceRequest) =>
    this.unary("ApplyService", this.services.applyService.bind(this.services), req);
  getService = (req: api.GetServiceRequest) =>
    this.unary("GetService", this.services.getService.bind(this.services), req);
  listServices = (req: api.ListServicesRequest) =>
    this.unary("ListServices", this.services.listServices.bind(this.services), req);
  deleteService = (req: api.DeleteServiceRequest) =>
    this.unary("DeleteService", this.services.deleteService.bind(this.services), req);
  listEndpoints = (req: api.ListEndpointsRequest) =>
    this.unary("ListEndpoints", this.services.listEndpoints.bind(this.services), req);
  reportLoad = (req: api.ReportLoadRequest) =>
    this.unary("ReportLoad", this.services.reportLoad.bind(this.services), req);
  whoAmI = (req: api.WhoAmIRequest) => this.unary("WhoAmI", this.authClient.whoAmI.bind(this.authClient), req);
  createKey = (req: api.CreateKeyRequest) =>
    this.unary("CreateKey", this.authClient.createKey.bind(this.authClient), req);
  listKeys = (req: api.ListKeysRequest) => this.unary("ListKeys", this.authClient.listKeys.bind(this.authClient), req);
  revokeKey = (req: api.RevokeKeyRequest) =>
    this.unary("RevokeKey", this.authClient.revokeKey.bind(this.authClient), req);
  setTenantPolicy = (req: api.SetTenantPolicyRequest) =>
    this.unary("SetTenantPolicy", this.authClient.setTenantPolicy.bind(this.authClient), req);
  getTenantPolicy = (req: api.GetTenantPolicyRequest) =>
    this.unary("GetTenantPolicy", this.authClient.getTenantPolicy.bind(this.authClient), req);
  listAudit = (req: api.ListAuditRequest) =>
    this.unary("ListAudit", this.auditClient.listAudit.bind(this.auditClient), req);
  promoteRollout = (req: api.PromoteRolloutRequest) =>
    this.unary("PromoteRollout", this.services.promoteRollout.bind(this.services), req);
  abortRollout = (req: api.AbortRolloutRequest) =>
    this.unary("AbortRollout", this.services.abortRollout.bind(this.services), req);

  close(): void {
    this.services.close();
    this.jobs.close();
    this.operator.close();
    this.billing.close();
    this.authClient.close();
    this.auditClient.close();
  }

  private metadata(): Metadata {
    const md = new Metadata();
    if (this.options.token) md.set("authorization", `Bearer ${this.options.token}`);
    return md;
  }

  private fail(method: string, err: unknown): GrpcCallError {
    const e = err as ServiceError;
    return new GrpcCallError(describeGrpcError(e, { method, address: this.options.address }), e.code);
  }

  private unary<Req, Res>(method: string, fn: Unary<Req, Res>, req: Req): Promise<Res> {
    return new Promise((resolve, reject) => {
      fn(req, this.metadata(), { deadline: Date.now() + UNARY_TIMEOUT_MS }, (err, res) =>
        err ? reject(this.fail(method, err)) : resolve(res),
      );
    });
  }

  /** A server stream as an async iterable; ends when the server ends it, throws a GrpcCallError on failure. */
  private async *stream<Req, Res>(method: string, fn: ServerStream<Req, Res>, req: Req): AsyncGenerator<Res> {
    const call = fn(req, this.metadata());
    try {
      for await (const message of call) yield message as Res;
    } catch (err) {
      throw this.fail(method, err);
    } finally {
      call.cancel();
    }
  }
}

/** A failed call: the message is the one-line reason, `code` the gRPC status (for fallbacks like UNIMPLEMENTED). */
export class GrpcCallError extends CliError {
  override name = "GrpcCallError";
  constructor(
    message: string,
    readonly code: number | undefined,
  ) {
    super(message);
  }
}

export { status as grpcStatus };
