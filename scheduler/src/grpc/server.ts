/**
 * The gRPC server: JobService, OperatorService, BillingService, ServiceService, grpc.health.v1.Health and server reflection (v1 and v1alpha),
 * bound to one address ("host:0" picks a free port).
 */
import { BillingServiceService, JobServiceService, OperatorServiceService, ServiceServiceService } from "@capa/api";
import { Server, ServerCredentials } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { HealthImplementation } from "grpc-health-check";
import type { Logger } from "pino";
import { findProtoDir, PROTO_FILES } from "./proto-dir.js";

export const SERVICE_NAMES = [
  "capa.v1.JobService",
  "capa.v1.OperatorService",
  "capa.v1.BillingService",
  "capa.v1.ServiceService",
] as const;

export interface GrpcServerOptions {
  address: string;
  jobService: import("@capa/api").JobServiceServer;
  operatorService: import("@capa/api").OperatorServiceServer;
  billingService: import("@capa/api").BillingServiceServer;
  /** Inference services (scheduler/src/services). */
  serviceService: import("@capa/api").ServiceServiceServer;
  protoDir?: string;
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
  server.addService(JobServiceService, options.jobService);
  server.addService(OperatorServiceService, options.operatorService);
  server.addService(BillingServiceService, options.billingService);
  server.addService(ServiceServiceService, options.serviceService);
  const health = new HealthImplementation({
    "": "NOT_SERVING",
    ...Object.fromEntries(SERVICE_NAMES.map((s) => [s, "NOT_SERVING"])),
  });
  health.addToServer(server);
  addReflection(server, options);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(options.address, ServerCredentials.createInsecure(), (err, bound) =>
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

function addReflection(server: Server, options: GrpcServerOptions): void {
  const protoDir = findProtoDir(options.protoDir);
  if (!protoDir) {
    options.logger.warn("proto directory not found; server reflection is off");
    return;
  }
  try {
    const definition = loadSync(PROTO_FILES, {
      includeDirs: [protoDir],
      keepCase: false,
      longs: Number,
      enums: String,
    });
    new ReflectionService(definition).addToServer(server);
  } catch (err) {
    options.logger.warn({ err, protoDir }, "server reflection is off: protos did not load");
  }
}
