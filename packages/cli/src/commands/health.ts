/**
 * `capa health`: asks a scheduler's grpc.health.v1 Health service whether it is SERVING (exit 0) or not (exit 1).
 * It is what the compose healthchecks run: a TCP probe would pass while the scheduler is still loading its state
 * or already stopping, the health service says NOT_SERVING then. Health is open (no API key), TLS follows
 * CAPA_TLS / CAPA_TLS_CA like every verb.
 */
import { type Client, makeGenericClientConstructor } from "@grpc/grpc-js";
import { Command } from "commander";
import { service as healthService } from "grpc-health-check";
import { print, printJson } from "../context.js";
import { CliError } from "../errors.js";
import { channelCredentials, clientOptions } from "../grpc.js";
import { parseDurationFlag } from "../spec.js";

interface HealthFlags {
  address?: string;
  service: string;
  timeout: number;
  json?: boolean;
}

const STATUS = ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"] as const;
const HealthClient = makeGenericClientConstructor(healthService as never, "grpc.health.v1.Health");

function check(address: string, serviceName: string, timeoutSeconds: number): Promise<string> {
  const options = clientOptions({ addr: address });
  const client = new HealthClient(address, channelCredentials(options.tls)) as unknown as Client & {
    check(
      req: { service: string },
      opts: { deadline: Date },
      cb: (err: Error | null, res?: { status: unknown }) => void,
    ): void;
  };
  return new Promise<string>((resolve) => {
    client.check({ service: serviceName }, { deadline: new Date(Date.now() + timeoutSeconds * 1000) }, (err, res) => {
      client.close();
      if (err) resolve(`unreachable (${err.message})`);
      else resolve(typeof res?.status === "number" ? (STATUS[res.status] ?? String(res.status)) : String(res?.status));
    });
  });
}

export function healthCommand(): Command {
  return new Command("health")
    .description("check a scheduler's gRPC health service: exit 0 when SERVING, 1 otherwise (for healthchecks)")
    .option("--address <host:port[,host:port]>", "scheduler(s) to check, all must serve (default CAPA_GRPC_ADDR)")
    .option("--service <name>", 'the service to ask about ("" = the whole server)', "")
    .option("--timeout <duration>", "deadline of each check (default 3s)", parseDurationFlag, 3)
    .option("--json", "print one JSON object {address: status}")
    .action(async (flags: HealthFlags) => {
      const addresses = (flags.address ?? clientOptions({}).address)
        .split(",")
        .map((a) => a.trim())
        .filter(Boolean);
      const results = await Promise.all(addresses.map((a) => check(a, flags.service, flags.timeout)));
      const doc = Object.fromEntries(addresses.map((a, i) => [a, results[i]!]));
      if (flags.json) printJson(doc);
      else print(addresses.map((a, i) => `${a} ${results[i]}`).join("\n"));
      if (results.some((r) => r !== "SERVING"))
        throw new CliError(`not serving: ${addresses.filter((_, i) => results[i] !== "SERVING").join(", ")}`);
    });
}
