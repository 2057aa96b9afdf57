/**
 * `capa gateway`: an HTTP entry point for one service (packages/gateway). Requests go to the nearest ready
 * replica with the least load; load per replica is reported to the scheduler, which autoscales on it.
 */
import { type GatewaySource, startGateway } from "@capa/gateway";
import { Command } from "commander";
import { withScheduler } from "../context.js";
import { CliError } from "../errors.js";
import { stdoutLogger } from "../local/logger.js";
import { stopWithin, waitForShutdownSignal } from "../local/signals.js";
import { parseInteger } from "../spec.js";

interface GatewayFlags {
  service?: string;
  region?: string;
  host: string;
  port: number;
  id?: string;
  refreshMs: number;
  reportMs: number;
  logLevel: string;
}

export function gatewayCommand(): Command {
  return new Command("gateway")
    .description("serve a service over HTTP: each request goes to the nearest ready replica with the least load")
    .option("--service <name>", "the service (required)")
    .option("--region <region>", "the region of this gateway's clients: its replicas are the nearest (required)")
    .option("--host <host>", "listen host", "127.0.0.1")
    .option("--port <port>", "listen port (0 = a free port)", parseInteger, 8080)
    .option("--id <gateway-id>", "identity in load reports (default gw-<region>-<pid>)")
    .option("--refresh-ms <ms>", "how often the endpoint set is fetched", parseInteger, 500)
    .option("--report-ms <ms>", "load report window", parseInteger, 1000)
    .option("--log-level <level>", "trace, debug, info, warn, error", process.env.CAPA_LOG_LEVEL ?? "info")
    .action(async (flags: GatewayFlags, self: Command) => {
      if (!flags.service) throw new CliError("gateway needs --service NAME");
      if (!flags.region) throw new CliError("gateway needs --region, the region of its clients (e.g. eu-west)");
      const { service, region } = flags;
      await withScheduler(self, async (client) => {
        const source: GatewaySource = {
          listEndpoints: (req) => client.listEndpoints({ ...req, limit: 0, pageToken: "" }),
          reportLoad: (req) => client.reportLoad(req),
        };
        const logger = stdoutLogger("capa-gateway", flags.logLevel);
        let gw: Awaited<ReturnType<typeof startGateway>>;
        try {
          gw = await startGateway({
            source,
            tenant: client.options.tenant,
            service,
            region,
            host: flags.host,
            port: flags.port,
            refreshMs: flags.refreshMs,
            reportMs: flags.reportMs,
            logger,
            ...(flags.id ? { gatewayId: flags.id } : {}),
          });
        } catch (err) {
          throw new CliError(`gateway failed to start: ${(err as Error).message}`);
        }
        process.stderr.write(`capa gateway: ${service} (${region}) on http://${gw.address}\n`);
        await waitForShutdownSignal();
        if (!(await stopWithin(() => gw.stop(), 10_000))) throw new CliError("gateway did not stop within 10 s");
      });
    });
}
