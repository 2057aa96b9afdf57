import { status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { clientOptions, describeGrpcError } from "./grpc.js";

const ctx = { method: "SubmitJob", address: "127.0.0.1:50051" };

describe("describeGrpcError", () => {
  it("keeps the server's field path for invalid arguments, on one line", () => {
    const err = {
      code: status.INVALID_ARGUMENT,
      details: "spec.gpus_per_replica: must be an integer in 0..64, got -1",
    };
    expect(describeGrpcError(err, ctx)).toBe(
      "invalid argument: spec.gpus_per_replica: must be an integer in 0..64, got -1",
    );
    expect(describeGrpcError({ code: status.INVALID_ARGUMENT, details: "a: x\nb: y" }, ctx)).toBe(
      "invalid argument: a: x; b: y",
    );
  });

  it("says which address could not be reached and which variable sets it", () => {
    const refused = {
      code: status.UNAVAILABLE,
      details: "No connection established. Last error: connect ECONNREFUSED",
    };
    expect(describeGrpcError(refused, ctx)).toBe("cannot reach the scheduler at 127.0.0.1:50051 (CAPA_GRPC_ADDR)");
  });

  it("shows a reachable server's own UNAVAILABLE reason", () => {
    const storeDown = { code: status.UNAVAILABLE, details: "job store unavailable: NATS disconnected" };
    expect(describeGrpcError(storeDown, ctx)).toBe(
      "scheduler unavailable (retry): job store unavailable: NATS disconnected",
    );
  });

  it.each([
    [status.NOT_FOUND, "job j-9 not found", "not found: job j-9 not found"],
    [status.FAILED_PRECONDITION, "over budget", "failed precondition: over budget"],
    [status.RESOURCE_EXHAUSTED, "too many jobs", "resource exhausted: too many jobs"],
    [status.UNAUTHENTICATED, "no token", "unauthenticated: no token (set CAPA_TOKEN or CAPA_CREDENTIALS)"],
    [status.PERMISSION_DENIED, "tenant b", "permission denied: tenant b"],
    [status.UNIMPLEMENTED, "", "the scheduler at 127.0.0.1:50051 does not implement SubmitJob"],
    [status.DEADLINE_EXCEEDED, "", "the scheduler at 127.0.0.1:50051 did not answer SubmitJob in time"],
    [status.INTERNAL, "boom", "SubmitJob failed: boom"],
  ])("maps status %i", (code, details, expected) => {
    expect(describeGrpcError({ code, details }, ctx)).toBe(expected);
  });
});

describe("clientOptions", () => {
  const none = () => undefined;
  it("takes flags over environment over defaults", () => {
    expect(clientOptions({}, {}, none)).toEqual({ address: "127.0.0.1:50051", tenant: "" });
    const env = { CAPA_GRPC_ADDR: "sched:6000", CAPA_TENANT: "team-a", CAPA_TOKEN: " s3cret " };
    expect(clientOptions({}, env, none)).toEqual({ address: "sched:6000", tenant: "team-a", token: "s3cret" });
    expect(clientOptions({ addr: "other:1", tenant: "b" }, env, none)).toEqual({
      address: "other:1",
      tenant: "b",
      token: "s3cret",
    });
  });

  it("reads the token and address from the credentials file unless CAPA_TOKEN is set", () => {
    const file = () => ({ token: "capa_file", address: "file-host:7" });
    expect(clientOptions({}, {}, file)).toEqual({ address: "file-host:7", tenant: "", token: "capa_file" });
    expect(clientOptions({}, { CAPA_TOKEN: "capa_env", CAPA_GRPC_ADDR: "env:1" }, file)).toEqual({
      address: "env:1",
      tenant: "",
      token: "capa_env",
    });
  });

  it("turns TLS on with CAPA_TLS or a CA file", () => {
    expect(clientOptions({}, { CAPA_TLS: "1" }, none).tls).toEqual({});
    expect(
      clientOptions({}, { CAPA_TLS_CA: "/ca.pem", CAPA_TLS_CLIENT_CERT: "/c", CAPA_TLS_CLIENT_KEY: "/k" }, none).tls,
    ).toEqual({
      caFile: "/ca.pem",
      certFile: "/c",
      keyFile: "/k",
    });
  });
});
