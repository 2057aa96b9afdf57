/** The `capa` command tree: only wiring; each verb lives in commands/<verb>.ts. */
import type { Command } from "commander";
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
import { finishProgram, rootProgram } from "./program-root.js";

export { CLI_VERSION } from "./program-root.js";

export function buildProgram(): Command {
  const program = rootProgram();
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
  return finishProgram(program);
}
