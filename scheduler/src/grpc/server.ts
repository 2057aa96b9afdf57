/**
 * The gRPC server: JobService, OperatorService, BillingService, ServiceService, grpc.health.v1.Health and server reflection (v1 and v1alpha),
 * bound to one address ("host:0" picks a free port).
 */
import { readFileSync } from "node:fs";
import {
  AuditServiceService,
  AuthServiceService,
  BillingServiceService,
  FILE_DESCRIPTOR_PROTOS,
  JobServiceService,
  OperatorServiceService,
  ScheduleServiceService,
  ServiceServiceService,
} from "@capa/api";
import { Server, ServerCredentials, type ServiceDefinition, type UntypedServiceImplementation } from "@grpc/grpc-js";
import type { PackageDefinition } from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { HealthImplementation } from "grpc-health-check";
import type { Logger } from "pino";
import { type GuardDeps, guardService } from "./guard.js";
import { scopedByTenantField } from "./scope.js";

export const SERVICE_NAMES = [
  "capa.v1.JobService",
  "capa.v1.OperatorService",
  "capa.v1.BillingService",
  "capa.v1.ServiceService",
  "capa.v1.ScheduleService",
  "capa.v1.AuthService",
  "capa.v1.AuditService",
] as const;

/** Server TLS: PEM files; with `clientCaFile`, clients must present a certificate it signed (mTLS). */
export interface GrpcTlsOptions {
  certFile: string;
  keyFile: string;
  clientCaFile?: string;
}

export interface GrpcServerOptions {
  address: string;
  jobService: import("@capa/api").JobServiceServer;
  operatorService: import("@capa/api").OperatorServiceServer;
  billingService: import("@capa/api").BillingServiceServer;
  /** Inference services (scheduler/src/services). */
  serviceService: import("@capa/api").ServiceServiceServer;
  /** Recurring and triggered runs (scheduler/src/schedules). */
  scheduleService: import("@capa/api").ScheduleServiceServer;
  authService: import("@capa/api").AuthServiceServer;
  auditService: import("@capa/api").AuditServiceServer;
  /** Authentication, permissions and audit of every capa RPC (health and reflection stay open). */
  guard: GuardDeps;
  /** Plaintext when absent. */
  tls?: GrpcTlsOptions;
  logger: Logger;
}

export interface RunningGrpcServer {
  address: string;
  health: HealthImplementation;
  /** Stops accepting calls, lets running unary calls finish briefly, then cancels the rest (streams). */
  stop(graceMs?: number): Promise<void>;
}

export async function startGrpcServer(options: GrpcServerOptions): Promise<RunningGrpcServer> {
  const server = new Server({
    "grpc.max_receive_message_length": 4 * 1024 * 1024,
    "grpc.max_send_message_length": 16 * 1024 * 1024,
  });
  const add = (definition: ServiceDefinition, impl: object) => {
    const guarded = guardService(definition, impl as UntypedServiceImplementation, options.guard);
    server.addService(guarded.definition, guarded.impl);
  };
  add(JobServiceService, options.jobService);
  add(OperatorServiceService, options.operatorService);
  add(BillingServiceService, options.billingService);
  add(AuthServiceService, options.authService);
  add(AuditServiceService, options.auditService);
  add(ServiceServiceService, scopedByTenantField(options.serviceService));
  add(ScheduleServiceService, scopedByTenantField(options.scheduleService));
  const health = new HealthImplementation({
    "": "NOT_SERVING",
    ...Object.fromEntries(SERVICE_NAMES.map((s) => [s, "NOT_SERVING"])),
  });
  health.addToServer(server);
  addReflection(server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(options.address, serverCredentials(options.tls), (err, bound) =>
      err ? reject(err) : resolve(bound),
    ),
  );
  const host = options.address.slice(0, options.address.lastIndexOf(":")) || "127.0.0.1";
  return {
    address: `${host}:${port}`,
    health,
    async stop(graceMs = 2000) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}

export function serverCredentials(tls: GrpcTlsOptions | undefined): ServerCredentials {
  if (!tls) return ServerCredentials.createInsecure();
  const ca = tls.clientCaFile ? readFileSync(tls.clientCaFile) : null;
  return ServerCredentials.createSsl(
    ca,
    [{ private_key: readFileSync(tls.keyFile), cert_chain: readFileSync(tls.certFile) }],
    ca !== null,
  );
}

/**
 * Reflection serves the descriptors buf compiled from proto/ (generated into @capa/api, so they match the served
 * code and need no proto files at run time), under the files' real names (`capa/v1/jobs.proto`, ...), with their
 * comments, plus grpc.health.v1.Health. proto-loader's definitions would merge each package into one made-up file
 * (`capa_v1.proto`), which reflection clients cannot resolve. @grpc/reflection reads only `fileDescriptorProtos`.
 */
function addReflection(server: Server): void {
  const files = FILE_DESCRIPTOR_PROTOS.map((b64) => Buffer.from(b64, "base64"));
  const definition = { "capa.descriptors": { fileDescriptorProtos: files } } as unknown as PackageDefinition;
  new ReflectionService(definition).addToServer(server);
}
