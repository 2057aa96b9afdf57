/** The `capa` command tree: only wiring; each verb lives in commands/<verb>.ts. */
import { API_VERSION, CAPA_VERSION } from "@capa/domain";
import { Command } from "commander";
import { agentCommand } from "./commands/agent.js";
import { agentsCommand } from "./commands/agents.js";
import { applyCommand } from "./commands/apply.js";
import { auditCommand } from "./commands/audit.js";
import { authCommand } from "./commands/auth.js";
import { billCommand } from "./commands/bill.js";
import { cancelCommand } from "./commands/cancel.js";
import { clusterCommand } from "./commands/cluster.js";
import { completionCommand } from "./commands/completion.js";
import { drainCommand } from "./commands/drain.js";
import { earningsCommand } from "./commands/earnings.js";
import { explainCommand } from "./commands/explain.js";
import { gatewayCommand } from "./commands/gateway.js";
import { healthCommand } from "./commands/health.js";
import { jobsCommand } from "./commands/jobs.js";
import { logsCommand } from "./commands/logs.js";
import { offersCommand } from "./commands/offers.js";
import { policyCommand } from "./commands/policy.js";
import { quoteCommand } from "./commands/quote.js";
import { receiptCommand } from "./commands/receipt.js";
import { replayCommand } from "./commands/replay.js";
import { rolloutCommand } from "./commands/rollout.js";
import { schedulerCommand } from "./commands/scheduler.js";
import { schedulesCommand } from "./commands/schedules.js";
import { endpointsCommand, serviceCommand } from "./commands/service.js";
import { simulateCommand } from "./commands/simulate.js";
import { statusCommand } from "./commands/status.js";
import { submitCommand } from "./commands/submit.js";
import { tenantCommand } from "./commands/tenant.js";
import { upCommand } from "./commands/up.js";
import { versionCommand } from "./commands/version.js";
import { FORMAT_COMMANDS } from "./context.js";
import { configureOutput, formatFromFlags, wantsDocument } from "./output.js";

export const CLI_VERSION = CAPA_VERSION;

export function buildProgram(): Command {
  const program = new Command("capa")
    .description("capa: a distributed GPU scheduler and marketplace broker")
    .version(`${CLI_VERSION} (${API_VERSION})`, "-V, --version", "print the client's version (capa version: both)")
    .option("--addr <host:port>", "scheduler gRPC address (env CAPA_GRPC_ADDR; default 127.0.0.1:50051)")
    .option(
      "--tenant <tenant>",
      "tenant for submit, jobs, quote, bill, receipt list, tenant limits and policy (env CAPA_TENANT; default: the credential's tenant; operators name the tenant they act for)",
    )
    .showHelpAfterError("(run capa <command> --help for usage)");
  for (const command of [
    upCommand(),
    schedulerCommand(),
    agentCommand(),
    submitCommand(),
    applyCommand(),
    jobsCommand(),
    statusCommand(),
    logsCommand(),
    cancelCommand(),
    agentsCommand(),
    offersCommand(),
    quoteCommand(),
    billCommand(),
    receiptCommand(),
    tenantCommand(),
    earningsCommand(),
    explainCommand(),
    policyCommand(),
    simulateCommand(),
    replayCommand(),
    drainCommand(),
    serviceCommand(),
    endpointsCommand(),
    gatewayCommand(),
    authCommand(),
    auditCommand(),
    rolloutCommand(),
    schedulesCommand(),
    versionCommand(),
    healthCommand(),
    completionCommand(() => program),
    clusterCommand(),
  ]) {
    program.addCommand(command);
  }
  // --addr and --tenant work after any verb too; say so in every verb's help.
  const showGlobals = (cmd: Command): void => {
    cmd.configureHelp({ showGlobalOptions: true });
    cmd.commands.forEach(showGlobals);
  };
  program.commands.forEach(showGlobals);
  // Usage errors throw (main.ts exits 2) instead of commander exiting 1 itself; addCommand does not inherit it.
  const throwOnUsageErrors = (cmd: Command): void => {
    cmd.exitOverride();
    cmd.commands.forEach(throwOnUsageErrors);
  };
  throwOnUsageErrors(program);
  // `-o json|yaml|name` prints documents: those verbs take their --json path, printJson renders the format.
  program.hook("preAction", (_root, action) => {
    if (!FORMAT_COMMANDS.has(action)) return;
    const flags = action.opts<{ output?: string; json?: boolean }>();
    const format = formatFromFlags(flags);
    configureOutput({ format });
    if (wantsDocument(format)) action.setOptionValue("json", true);
  });
  return program;
}
