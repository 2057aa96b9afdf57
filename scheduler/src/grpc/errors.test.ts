import {
  ConflictError,
  NotFoundError,
  PermissionDeniedError,
  PreconditionError,
  ResourceExhaustedError,
  UnavailableError,
  ValidationError,
} from "@capa/domain";
import { status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { AlreadyExistsError } from "../jobs/errors.js";
import { mapError } from "./errors.js";

describe("error mapping at the gRPC edge", () => {
  it("maps each domain error code to its gRPC status with the message", () => {
    const cases: [Error, status][] = [
      [
        new ValidationError([{ field: "spec.replicas", message: "must be an integer in 1..1024, got 0" }]),
        status.INVALID_ARGUMENT,
      ],
      [new NotFoundError("job j1 not found"), status.NOT_FOUND],
      [new AlreadyExistsError("request_id: already used"), status.ALREADY_EXISTS],
      [new PreconditionError("over budget"), status.FAILED_PRECONDITION],
      [new ResourceExhaustedError("too many"), status.RESOURCE_EXHAUSTED],
      [new ConflictError("changed"), status.ABORTED],
      [new UnavailableError("down"), status.UNAVAILABLE],
      [new PermissionDeniedError("no"), status.PERMISSION_DENIED],
    ];
    for (const [err, code] of cases)
      expect(mapError(err)).toEqual({
        code,
        details: err.message,
        internal: false,
        violations: err instanceof ValidationError ? err.violations : [],
      });
  });

  it("names the field in INVALID_ARGUMENT details", () => {
    const err = new ValidationError([
      { field: "spec.gpus_per_replica", message: "must be an integer in 0..64, got -1" },
    ]);
    expect(mapError(err).details).toBe("spec.gpus_per_replica: must be an integer in 0..64, got -1");
  });

  it("turns store timeouts into UNAVAILABLE and hides unexpected errors behind INTERNAL", () => {
    const timeout = Object.assign(new Error("timeout"), { name: "TimeoutError" });
    expect(mapError(timeout)).toMatchObject({ code: status.UNAVAILABLE, internal: true });
    expect(mapError(new TypeError("x is undefined"))).toEqual({
      code: status.INTERNAL,
      details: "internal error",
      internal: true,
      violations: [],
    });
    expect(mapError("a string")).toMatchObject({ code: status.INTERNAL });
  });

  it("is UNAVAILABLE while a clustered stream elects a new leader (JetStreamNotEnabled caused by no responders)", () => {
    const noResponders = Object.assign(new Error("no responders: '$KV.capa_requests.x'"), { name: "NoResponders" });
    const err = Object.assign(new Error("jetstream is not enabled", { cause: noResponders }), {
      name: "JetStreamNotEnabled",
    });
    expect(mapError(err)).toMatchObject({ code: status.UNAVAILABLE, internal: true });
    const wrapped = new Error("submit failed", { cause: Object.assign(new Error("x"), { name: "NoResponders" }) });
    expect(mapError(wrapped)).toMatchObject({ code: status.UNAVAILABLE });
  });
});
