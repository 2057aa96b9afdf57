/** Scheduler-specific error kinds (the domain's CapaError codes map them to gRPC at the edge). */
import { CapaError } from "@capa/domain";

/** A request id reused with a different job spec. */
export class AlreadyExistsError extends CapaError {
  readonly code = "ALREADY_EXISTS";
}

/** This replica cannot do what was asked (e.g. it is shutting down). */
export class NotServingError extends CapaError {
  readonly code = "UNAVAILABLE";
}
