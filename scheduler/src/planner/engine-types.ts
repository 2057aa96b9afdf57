/** The placement engine's model, as the scheduler uses it (re-exported from @capa/placement). */
export type {
  AgentView,
  AllocationView,
  Explanation,
  GpuView,
  Placement,
  PlacementRequest,
  PlaceOptions,
  Plan,
  PlanOutcome,
  Preemption,
} from "@capa/placement";
