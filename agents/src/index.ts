/** @capa/agent: the daemon on a provider machine. The CLI's `capa agent` builds an AgentConfig and calls startAgent. */
export { type AgentHandle, SIMULATED_LABEL, startAgent } from "./agent.js";
export {
  AGENT_DEFAULTS,
  AGENT_VERSION,
  type AgentConfig,
  type AgentFlags,
  defaultAgentId,
  parseAgentConfig,
  parseDurationMs,
  parseLabelFlag,
  parsePriceFlag,
  type ResolvedAgentConfig,
  resolveAgentConfig,
} from "./config.js";
export * from "./errors.js";
export {
  DEFAULT_NVIDIA_SMI_TIMEOUT_MS,
  discoverGpus,
  discoverInventory,
  type GpuInventory,
  type NvidiaSmiOptions,
  queryNvidiaSmi,
  simulatedGpus,
} from "./gpu/discover.js";
export {
  NVIDIA_SMI_ARGS,
  NVIDIA_SMI_FIELDS,
  parseNvidiaSmiCsv,
  type SmiGpuRow,
  smiRowToGpu,
} from "./gpu/nvidia-smi.js";
export { AgentMetrics, type AgentMetricsSource } from "./metrics/agent-metrics.js";
export {
  applyPriceChange,
  type PriceChangeReply,
  type PriceChangeRequest,
  parsePriceChangeList,
  servePriceControl,
  setAgentPrices,
} from "./price-control.js";
export { type ReconcileAction, type ReconcileInput, reconcile } from "./reconciler.js";
export { statusMsgId, usageMsgId } from "./reporter.js";
export { JOURNAL_FILE, readJournal, type TaskRecord } from "./task-records.js";
