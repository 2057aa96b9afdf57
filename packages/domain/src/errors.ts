/**
 * One error class per failure mode, each with a stable code the edges map to gRPC status codes
 * (INVALID_ARGUMENT, NOT_FOUND, ...). `cause` carries the underlying error where there is one.
 */
export type ErrorCode =
  | "INVALID_ARGUMENT"
  | "NOT_FOUND"
  | "ALREADY_EXISTS"
  | "FAILED_PRECONDITION"
  | "RESOURCE_EXHAUSTED"
  | "ABORTED"
  | "UNAVAILABLE"
  | "UNAUTHENTICATED"
  | "PERMISSION_DENIED"
  | "INTERNAL";

export abstract class CapaError extends Error {
  abstract readonly code: ErrorCode;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

export interface FieldViolation {
  /** Path of the offending field as it is named on the wire, e.g. `spec.gpus_per_replica`. */
  field: string;
  message: string;
}

export class ValidationError extends CapaError {
  readonly code = "INVALID_ARGUMENT";
  constructor(readonly violations: FieldViolation[]) {
    super(violations.map((v) => `${v.field}: ${v.message}`).join("; "));
  }
}

export class NotFoundError extends CapaError {
  readonly code = "NOT_FOUND";
}

/** A compare-and-set lost against a concurrent writer; the caller re-reads and retries. */
export class ConflictError extends CapaError {
  readonly code = "ABORTED";
}

export class PreconditionError extends CapaError {
  readonly code = "FAILED_PRECONDITION";
}

export class ResourceExhaustedError extends CapaError {
  readonly code = "RESOURCE_EXHAUSTED";
}

export class UnavailableError extends CapaError {
  readonly code = "UNAVAILABLE";
}

export class PermissionDeniedError extends CapaError {
  readonly code = "PERMISSION_DENIED";
}
