export {
  type GatewayHandle,
  type GatewayLogger,
  type GatewayOptions,
  type GatewaySource,
  type GatewayStats,
  startGateway,
} from "./gateway.js";
export { type PickInput, pickTarget, type Target, type TargetState } from "./pick.js";
export { LoadWindow, p95, type ReplicaWindow, type WindowReport } from "./stats.js";
