/**
 * gRPC over TLS and mTLS, end to end: certificates made with openssl for this run (a CA, a server certificate for
 * 127.0.0.1, a client certificate), a real scheduler serving TLS, generated clients and the built CLI talking to
 * it. Plaintext is refused by a TLS scheduler; with mTLS a client without a certificate signed by the CA is too.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as pb from "@capa/api";
import { type SchedulerHandle, startScheduler } from "@capa/scheduler";
import { type NatsServerHandle, startNatsServer } from "@capa/testkit";
import { type ChannelCredentials, credentials, Metadata, type ServiceError, status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assertCliBuilt, runCapa } from "./cli-harness.js";
import { adminTokenOf, rpc, silent, withToken } from "./scheduler-harness.js";

function makeCertificates(dir: string): void {
  const ssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  ssl("req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=capa-test-ca");
  writeFileSync(join(dir, "server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  for (const [name, ext] of [
    ["server", ["-extfile", "server.ext"]],
    ["client", []],
  ] as const) {
    ssl("req", ...ec, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=capa-test-${name}`);
    ssl(
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      `${name}.pem`,
      "-days",
      "1",
      ...ext,
    );
  }
}

describe("gRPC TLS and mTLS", () => {
  let dir: string;
  let nats: NatsServerHandle;
  let tls: SchedulerHandle;
  let mtls: SchedulerHandle;
  const file = (name: string) => readFileSync(join(dir, name));

  beforeAll(async () => {
    assertCliBuilt();
    dir = mkdtempSync(join(tmpdir(), "capa-tls-"));
    makeCertificates(dir);
    nats = await startNatsServer();
    const common = { natsUrl: nats.url, grpcAddress: "127.0.0.1:0", logger: silent, leaseTtlMs: 3_000 };
    tls = await startScheduler({
      ...common,
      dataDir: join(dir, "tls"),
      tlsCertFile: join(dir, "server.pem"),
      tlsKeyFile: join(dir, "server.key"),
    });
    mtls = await startScheduler({
      ...common,
      dataDir: join(dir, "mtls"),
      bootstrapToken: adminTokenOf(tls),
      tlsCertFile: join(dir, "server.pem"),
      tlsKeyFile: join(dir, "server.key"),
      tlsClientCaFile: join(dir, "ca.pem"),
    });
  });
  afterAll(async () => {
    await mtls?.stop();
    await tls?.stop();
    await nats?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const whoAmI = async (address: string, creds: ChannelCredentials, token: string) => {
    const client = new pb.AuthServiceClient(address, creds, withToken(token));
    try {
      return await rpc<pb.WhoAmIResponse>((cb) =>
        client.whoAmI({}, new Metadata(), { deadline: Date.now() + 5_000 }, cb),
      );
    } finally {
      client.close();
    }
  };

  it("serves TLS to a client that trusts the CA, and refuses plaintext", async () => {
    const token = adminTokenOf(tls);
    const answer = await whoAmI(tls.grpcAddress, credentials.createSsl(file("ca.pem")), token);
    expect(answer.key?.role).toBe("admin");
    const plain = await whoAmI(tls.grpcAddress, credentials.createInsecure(), token).catch((e: ServiceError) => e);
    expect((plain as ServiceError).code).toBe(status.UNAVAILABLE);
    const untrusted = await whoAmI(tls.grpcAddress, credentials.createSsl(), token).catch((e: ServiceError) => e);
    expect((untrusted as ServiceError).code).toBe(status.UNAVAILABLE);
  });

  it("the CLI talks TLS with CAPA_TLS_CA", async () => {
    const env = { CAPA_GRPC_ADDR: tls.grpcAddress, CAPA_TOKEN: adminTokenOf(tls), CAPA_TLS_CA: join(dir, "ca.pem") };
    const ok = await runCapa(["auth", "whoami", "--json"], { env });
    expect(ok.stderr).toBe("");
    expect(JSON.parse(ok.stdout)).toMatchObject({ role: "admin" });
    const plain = await runCapa(["auth", "whoami"], { env: { ...env, CAPA_TLS_CA: "" } });
    expect(plain.code).not.toBe(0);
  });

  it("with mTLS, refuses a client without a certificate the CA signed", async () => {
    const token = adminTokenOf(tls); // registered on the mTLS scheduler as its bootstrap token
    const withCert = credentials.createSsl(file("ca.pem"), file("client.key"), file("client.pem"));
    expect((await whoAmI(mtls.grpcAddress, withCert, token)).key?.role).toBe("admin");
    const noCert = await whoAmI(mtls.grpcAddress, credentials.createSsl(file("ca.pem")), token).catch(
      (e: ServiceError) => e,
    );
    expect((noCert as ServiceError).code).toBe(status.UNAVAILABLE);
    const cli = await runCapa(["auth", "whoami", "--json"], {
      env: {
        CAPA_GRPC_ADDR: mtls.grpcAddress,
        CAPA_TOKEN: token,
        CAPA_TLS_CA: join(dir, "ca.pem"),
        CAPA_TLS_CLIENT_CERT: join(dir, "client.pem"),
        CAPA_TLS_CLIENT_KEY: join(dir, "client.key"),
      },
    });
    expect(cli.stderr).toBe("");
    expect(JSON.parse(cli.stdout)).toMatchObject({ role: "admin" });
  });
});
