import { startScheduler } from "@capa/scheduler";
import { Command } from "commander";
import { CliError } from "../errors.js";
import { stdoutLogger } from "../local/logger.js";
import { stopWithin, waitForShutdownSignal } from "../local/signals.js";
import { nkeySeedFrom } from "../nats-credentials.js";
import { parseDurationFlag, parseInteger, parseMoney } from "../spec.js";

/** TLS files from flags, else CAPA_TLS_CERT / CAPA_TLS_KEY / CAPA_TLS_CLIENT_CA. */
function tlsConfig(flags: SchedulerFlags) {
  const cert = flags.tlsCert ?? process.env.CAPA_TLS_CERT;
  const key = flags.tlsKey ?? process.env.CAPA_TLS_KEY;
  const ca = flags.tlsClientCa ?? process.env.CAPA_TLS_CLIENT_CA;
  return {
    ...(cert ? { tlsCertFile: cert } : {}),
    ...(key ? { tlsKeyFile: key } : {}),
    ...(ca ? { tlsClientCaFile: ca } : {}),
  };
}

interface SchedulerFlags {
  natsUrl?: string;
  natsNkey?: string;
  maxAdvertPrice?: number;
  grpcAddress: string;
  advertiseAddress?: string;
  id?: string;
  agentTimeout?: number;
  leaseTtl?: number;
  submitStallBudget?: number;
  partitionGrace?: number;
  metricsPort?: number;
  metricsHost?: string;
  httpPort?: number;
  httpHost?: string;
  dataDir?: string;
  receiptKey?: string;
  feeBps?: number;
  retention?: number;
  jsReplicas?: number;
  tlsCert?: string;
  tlsKey?: string;
  tlsClientCa?: string;
  maxPriority?: number;
  defaultMaxPrice?: number;
  logLevel: string;
}

export function schedulerCommand(): Command {
  return new Command("scheduler")
    .description("run the scheduler service (gRPC API + planner) against a NATS server with JetStream")
    .option("--nats-url <url>", "NATS URL(s), comma-separated (env CAPA_NATS_URL; default nats://127.0.0.1:4222)")
    .option("--nats-nkey <file>", "the scheduler's nkey seed file, <auth-dir>/scheduler.nk (env CAPA_NATS_NKEY)")
    .option("--max-advert-price <usd>", "refuse adverts priced above this per GPU-hour (default $100)", parseMoney)
    .option("--grpc-address <host:port>", "gRPC listen address (port 0 = a free port)", "127.0.0.1:50051")
    .option(
      "--advertise-address <host:port>",
      "where other replicas reach this one; followers forward writes to the leader there " +
        "(env CAPA_ADVERTISE_ADDRESS; default the gRPC address, a 0.0.0.0 host replaced by the host name)",
    )
    .option("--id <scheduler-id>", "identity in the leader lease and logs (default: hostname-pid-random)")
    .option(
      "--agent-timeout <duration>",
      "an agent silent this long is lost (default: its advert TTL)",
      parseDurationFlag,
    )
    .option(
      "--partition-grace <duration>",
      "when every agent of a region is silent (a cut link), hold them this long before re-placing their tasks (default 2m; give the agents the same --partition-grace)",
      parseDurationFlag,
    )
    .option("--lease-ttl <duration>", "leader lease length (default 8s)", parseDurationFlag)
    .option(
      "--submit-stall-budget <duration>",
      "how long SubmitJob's normal path may be stuck on the store before the submission is acknowledged from an intake stream (default 1.2s)",
      parseDurationFlag,
    )
    .option("--metrics-port <port>", "serve Prometheus metrics on this port (off by default)", parseInteger)
    .option("--metrics-host <host>", "metrics listen host (default 127.0.0.1)")
    .option(
      "--http-port <port>",
      "serve the HTTP edge (console, webhooks, JSON reads; API keys required) on this port (off by default)",
      parseInteger,
    )
    .option("--http-host <host>", "HTTP edge listen host (default 127.0.0.1)")
    .option("--data-dir <dir>", "where the scheduler keeps files (env CAPA_DATA_DIR; default ~/.capa/scheduler)")
    .option(
      "--receipt-key <pem-file>",
      "Ed25519 receipt signing key, created if missing (default <data-dir>/receipt-signing-key.pem)",
    )
    .option("--fee-bps <n>", "platform fee in basis points of each charge (default 1000 = 10%)", parseInteger)
    .option(
      "--js-replicas <n>",
      "JetStream replicas of capa's buckets and streams, placed in the connected (home) cluster " +
        "(default 3 when that cluster has >= 3 servers, else 1)",
      parseInteger,
    )
    .option("--tls-cert <pem-file>", "serve gRPC over TLS with this certificate (env CAPA_TLS_CERT)")
    .option("--tls-key <pem-file>", "the TLS certificate's private key (env CAPA_TLS_KEY)")
    .option(
      "--tls-client-ca <pem-file>",
      "mTLS: clients must present a certificate this CA signed (env CAPA_TLS_CLIENT_CA)",
    )
    .option("--max-priority <n>", "highest priority of tenants without their own ceiling (default 100)", parseInteger)
    .option(
      "--default-max-price <usd>",
      "max $/GPU-hour of jobs that name none, for tenants without their own (default $100)",
      parseMoney,
    )
    .option(
      "--retention <duration>",
      "keep final jobs (explanations, request ids) this long after they finished (default 30d)",
      parseDurationFlag,
    )
    .option("--log-level <level>", "trace, debug, info, warn, error", process.env.CAPA_LOG_LEVEL ?? "info")
    .action(async (flags: SchedulerFlags) => {
      let handle: Awaited<ReturnType<typeof startScheduler>>;
      const natsNkeySeed = nkeySeedFrom(flags.natsNkey);
      try {
        handle = await startScheduler({
          natsUrl: flags.natsUrl ?? process.env.CAPA_NATS_URL ?? "nats://127.0.0.1:4222",
          grpcAddress: flags.grpcAddress,
          ...(natsNkeySeed ? { natsNkeySeed } : {}),
          ...(flags.maxAdvertPrice !== undefined ? { maxAdvertPricePerGpuHour: flags.maxAdvertPrice } : {}),
          ...(flags.id ? { schedulerId: flags.id } : {}),
          ...((flags.advertiseAddress ?? process.env.CAPA_ADVERTISE_ADDRESS)
            ? { advertiseAddress: flags.advertiseAddress ?? process.env.CAPA_ADVERTISE_ADDRESS }
            : {}),
          ...(flags.agentTimeout ? { agentTimeoutMs: flags.agentTimeout * 1000 } : {}),
          ...(flags.leaseTtl ? { leaseTtlMs: flags.leaseTtl * 1000 } : {}),
          ...(flags.submitStallBudget ? { submitStallBudgetMs: Math.round(flags.submitStallBudget * 1000) } : {}),
          ...(flags.partitionGrace ? { partitionGraceMs: flags.partitionGrace * 1000 } : {}),
          ...(flags.metricsPort !== undefined ? { metricsPort: flags.metricsPort } : {}),
          ...(flags.metricsHost ? { metricsHost: flags.metricsHost } : {}),
          ...(flags.httpPort !== undefined ? { httpPort: flags.httpPort } : {}),
          ...(flags.httpHost ? { httpHost: flags.httpHost } : {}),
          ...(flags.dataDir ? { dataDir: flags.dataDir } : {}),
          ...(flags.receiptKey ? { receiptKeyPath: flags.receiptKey } : {}),
          ...(flags.feeBps !== undefined ? { feeBasisPoints: flags.feeBps } : {}),
          ...(flags.jsReplicas !== undefined ? { replicas: flags.jsReplicas } : {}),
          ...tlsConfig(flags),
          ...(flags.maxPriority !== undefined ? { defaultMaxPriority: flags.maxPriority } : {}),
          ...(flags.defaultMaxPrice !== undefined ? { defaultMaxPricePerGpuHour: flags.defaultMaxPrice } : {}),
          ...(flags.retention ? { retentionMs: flags.retention * 1000 } : {}),
          logger: stdoutLogger("capa-scheduler", flags.logLevel),
        });
      } catch (err) {
        throw new CliError(`scheduler failed to start: ${(err as Error).message}`);
      }
      process.stderr.write(`capa scheduler: serving gRPC on ${handle.grpcAddress}\n`);
      if (handle.metricsAddress)
        process.stderr.write(`capa scheduler: metrics on http://${handle.metricsAddress}/metrics\n`);
      if (handle.httpUrl) process.stderr.write(`capa scheduler: serving HTTP on ${handle.httpUrl}\n`);
      if (handle.adminCredentialsFile)
        process.stderr.write(
          `capa scheduler: no admin key existed; one was written to ${handle.adminCredentialsFile} (CAPA_CREDENTIALS)\n`,
        );
      await waitForShutdownSignal();
      if (!(await stopWithin(() => handle.stop(), 30_000))) throw new CliError("scheduler did not stop within 30 s");
    });
}
