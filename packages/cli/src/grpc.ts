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
import { AddressRotation, DEFAULT_RETRY, parseAddresses, type RetryPolicy, withFailover } from "./failover.js";

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

export function channelCredentials(tls: ClientTls | undefined) {
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

interface ReplicaClients {
  jobs: api.JobServiceClient;
  operator: api.OperatorServiceClient;
  billing: api.BillingServiceClient;
  services: api.ServiceServiceClient;
  schedules: api.ScheduleServiceClient;
  authClient: api.AuthServiceClient;
  auditClient: api.AuditServiceClient;
}

/**
 * A connection to the scheduler replicas named by `options.address` (comma-separated, see failover.ts); every
 * method rejects with a CliError carrying a one-line reason. Unary calls fail over and retry UNAVAILABLE.
 */
export class SchedulerClient {
  private readonly rotation: AddressRotation;
  private readonly replicas = new Map<string, ReplicaClients>();

  constructor(
    readonly options: ClientOptions,
    private readonly retry: RetryPolicy = DEFAULT_RETRY,
  ) {
    try {
      this.rotation = new AddressRotation(parseAddresses(options.address));
    } catch (err) {
      throw new CliError((err as Error).message);
    }
  }

  /** Streams go to the replica that answered last (a unary call before them has found one that is up). */
  private get jobs(): api.JobServiceClient {
    return this.replica(this.rotation.current).jobs;
  }

  private replica(address: string): ReplicaClients {
    let clients = this.replicas.get(address);
    if (!clients) {
      const creds = channelCredentials(this.options.tls);
      clients = {
        jobs: new api.JobServiceClient(address, creds),
        operator: new api.OperatorServiceClient(address, creds),
        billing: new api.BillingServiceClient(address, creds),
        services: new api.ServiceServiceClient(address, creds),
        schedules: new api.ScheduleServiceClient(address, creds),
        authClient: new api.AuthServiceClient(address, creds),
        auditClient: new api.AuditServiceClient(address, creds),
      };
      this.replicas.set(address, clients);
    }
    return clients;
  }

  submitJob = (req: api.SubmitJobRequest) => this.unary("SubmitJob", (c) => c.jobs.submitJob.bind(c.jobs), req);
  getJob = (req: api.GetJobRequest) => this.unary("GetJob", (c) => c.jobs.getJob.bind(c.jobs), req);
  listJobs = (req: api.ListJobsRequest) => this.unary("ListJobs", (c) => c.jobs.listJobs.bind(c.jobs), req);
  cancelJob = (req: api.CancelJobRequest) => this.unary("CancelJob", (c) => c.jobs.cancelJob.bind(c.jobs), req);
  quote = (req: api.QuoteRequest) => this.unary("Quote", (c) => c.jobs.quote.bind(c.jobs), req);
  listOffers = (req: api.ListOffersRequest) => this.unary("ListOffers", (c) => c.jobs.listOffers.bind(c.jobs), req);
  getVersion = (req: api.GetVersionRequest) => this.unary("GetVersion", (c) => c.jobs.getVersion.bind(c.jobs), req);
  watchJob = (req: api.WatchJobRequest) => this.stream("WatchJob", this.jobs.watchJob.bind(this.jobs), req);
  streamLogs = (req: api.StreamLogsRequest) => this.stream("StreamLogs", this.jobs.streamLogs.bind(this.jobs), req);

  listAgents = (req: api.ListAgentsRequest) =>
    this.unary("ListAgents", (c) => c.operator.listAgents.bind(c.operator), req);
  drainAgent = (req: api.DrainAgentRequest) =>
    this.unary("DrainAgent", (c) => c.operator.drainAgent.bind(c.operator), req);
  getPolicy = (req: api.GetPolicyRequest) => this.unary("GetPolicy", (c) => c.operator.getPolicy.bind(c.operator), req);
  setPolicy = (req: api.SetPolicyRequest) => this.unary("SetPolicy", (c) => c.operator.setPolicy.bind(c.operator), req);
  explainJob = (req: api.ExplainJobRequest) =>
    this.unary("ExplainJob", (c) => c.operator.explainJob.bind(c.operator), req);
  simulate = (req: api.SimulateRequest) => this.unary("Simulate", (c) => c.operator.simulate.bind(c.operator), req);

  getInvoice = (req: api.GetInvoiceRequest) =>
    this.unary("GetInvoice", (c) => c.billing.getInvoice.bind(c.billing), req);
  getEarnings = (req: api.GetEarningsRequest) =>
    this.unary("GetEarnings", (c) => c.billing.getEarnings.bind(c.billing), req);
  getReceipt = (req: api.GetReceiptRequest) =>
    this.unary("GetReceipt", (c) => c.billing.getReceipt.bind(c.billing), req);
  listReceipts = (req: api.ListReceiptsRequest) =>
    this.unary("ListReceipts", (c) => c.billing.listReceipts.bind(c.billing), req);
  getSigningKey = (req: api.GetSigningKeyRequest) =>
    this.unary("GetSigningKey", (c) => c.billing.getSigningKey.bind(c.billing), req);
  setTenantLimits = (req: api.SetTenantLimitsRequest) =>
    this.unary("SetTenantLimits", (c) => c.billing.setTenantLimits.bind(c.billing), req);
  getTenantLimits = (req: api.GetTenantLimitsRequest) =>
    this.unary("GetTenantLimits", (c) => c.billing.getTenantLimits.bind(c.billing), req);

  applyService = (req: api.ApplyServiceRequest) =>
    this.unary("ApplyService", (c) => c.services.applyService.bind(c.services), req);
  getService = (req: api.GetServiceRequest) =>
    this.unary("GetService", (c) => c.services.getService.bind(c.services), req);
  listServices = (req: api.ListServicesRequest) =>
    this.unary("ListServices", (c) => c.services.listServices.bind(c.services), req);
  deleteService = (req: api.DeleteServiceRequest) =>
    this.unary("DeleteService", (c) => c.services.deleteService.bind(c.services), req);
  listEndpoints = (req: api.ListEndpointsRequest) =>
    this.unary("ListEndpoints", (c) => c.services.listEndpoints.bind(c.services), req);
  reportLoad = (req: api.ReportLoadRequest) =>
    this.unary("ReportLoad", (c) => c.services.reportLoad.bind(c.services), req);
  applySchedule = (req: api.ApplyScheduleRequest) =>
    this.unary("ApplySchedule", (c) => c.schedules.applySchedule.bind(c.schedules), req);
  getSchedule = (req: api.GetScheduleRequest) =>
    this.unary("GetSchedule", (c) => c.schedules.getSchedule.bind(c.schedules), req);
  listSchedules = (req: api.ListSchedulesRequest) =>
    this.unary("ListSchedules", (c) => c.schedules.listSchedules.bind(c.schedules), req);
  deleteSchedule = (req: api.DeleteScheduleRequest) =>
    this.unary("DeleteSchedule", (c) => c.schedules.deleteSchedule.bind(c.schedules), req);
  triggerSchedule = (req: api.TriggerScheduleRequest) =>
    this.unary("TriggerSchedule", (c) => c.schedules.triggerSchedule.bind(c.schedules), req);
  whoAmI = (req: api.WhoAmIRequest) => this.unary("WhoAmI", (c) => c.authClient.whoAmI.bind(c.authClient), req);
  createKey = (req: api.CreateKeyRequest) =>
    this.unary("CreateKey", (c) => c.authClient.createKey.bind(c.authClient), req);
  listKeys = (req: api.ListKeysRequest) => this.unary("ListKeys", (c) => c.authClient.listKeys.bind(c.authClient), req);
  revokeKey = (req: api.RevokeKeyRequest) =>
    this.unary("RevokeKey", (c) => c.authClient.revokeKey.bind(c.authClient), req);
  setTenantPolicy = (req: api.SetTenantPolicyRequest) =>
    this.unary("SetTenantPolicy", (c) => c.authClient.setTenantPolicy.bind(c.authClient), req);
  getTenantPolicy = (req: api.GetTenantPolicyRequest) =>
    this.unary("GetTenantPolicy", (c) => c.authClient.getTenantPolicy.bind(c.authClient), req);
  listAudit = (req: api.ListAuditRequest) =>
    this.unary("ListAudit", (c) => c.auditClient.listAudit.bind(c.auditClient), req);
  promoteRollout = (req: api.PromoteRolloutRequest) =>
    this.unary("PromoteRollout", (c) => c.services.promoteRollout.bind(c.services), req);
  abortRollout = (req: api.AbortRolloutRequest) =>
    this.unary("AbortRollout", (c) => c.services.abortRollout.bind(c.services), req);

  close(): void {
    for (const clients of this.replicas.values()) {
      clients.jobs.close();
      clients.operator.close();
      clients.billing.close();
      clients.services.close();
      clients.schedules.close();
      clients.authClient.close();
      clients.auditClient.close();
    }
    this.replicas.clear();
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

  /** `pick` selects the method on a replica's clients; each retry picks it on the replica the rotation moved to. */
  private async unary<Req, Res>(method: string, pick: (c: ReplicaClients) => Unary<Req, Res>, req: Req): Promise<Res> {
    try {
      return await withFailover(
        this.rotation,
        (address) =>
          new Promise<Res>((resolve, reject) => {
            pick(this.replica(address))(
              req,
              this.metadata(),
              { deadline: Date.now() + UNARY_TIMEOUT_MS },
              (err, res) => (err ? reject(err) : resolve(res)),
            );
          }),
        (err) => (err as ServiceError)?.code === status.UNAVAILABLE,
        this.retry,
        (err) => (err as ServiceError)?.metadata?.get("capa-leader-address")[0]?.toString(),
      );
    } catch (err) {
      throw this.fail(method, err);
    }
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
