/**
 * `capa agent enroll|revoke` as a separate process: the seed file is 0600 and matches the public key it prints,
 * the rendered auth.conf lists it and is accepted by a real nats-server, where the enrolled agent connects and an
 * unenrolled or revoked one is refused; `--keep-existing` keeps a key, bad ids are refused as invalid arguments.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connectBus, inboxPrefixFor } from "@capa/bus";
import { publicKeyOfSeed } from "@capa/nats-auth";
import { startNatsServer } from "@capa/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assertCliBuilt, parseJsonOutput, runCapa } from "./cli-harness.js";

interface Enrolled {
  agentId: string;
  region: string;
  publicKey: string;
  seedFile: string;
  authConf: string;
}

describe("capa agent enroll / revoke", () => {
  let dir: string;
  const enroll = (id: string, region: string, ...extra: string[]) =>
    runCapa(["agent", "enroll", "--json", "--id", id, "--region", region, "--auth-dir", join(dir, "auth"), ...extra]);

  beforeAll(() => {
    assertCliBuilt();
    dir = mkdtempSync(join(tmpdir(), "capa-cli-enroll-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("writes a 0600 seed and an auth.conf a real nats-server enforces; revoke takes the user away", async () => {
    const a = parseJsonOutput<Enrolled>(await enroll("gpu-node-1", "eu-west"), "capa agent enroll");
    expect(statSync(a.seedFile).mode & 0o777).toBe(0o600);
    const seed = readFileSync(a.seedFile, "utf8").trim();
    expect(publicKeyOfSeed(seed)).toBe(a.publicKey);
    expect(readFileSync(a.authConf, "utf8")).toContain(a.publicKey);

    const nats = await startNatsServer({ authorization: readFileSync(a.authConf, "utf8") });
    try {
      const connect = (nkeySeed: string) =>
        connectBus({
          servers: nats.url,
          name: "enrolled",
          nkeySeed,
          inboxPrefix: inboxPrefixFor("gpu-node-1"),
          maxReconnectAttempts: 0,
          timeoutMs: 3_000,
        });
      const nc = await connect(seed);
      await nc.close();
      const revoked = await runCapa(["agent", "revoke", "--id", "gpu-node-1", "--auth-dir", join(dir, "auth")]);
      expect(revoked.code, revoked.stderr).toBe(0);
      await nats.setAuthorization(readFileSync(a.authConf, "utf8"));
      await expect(connect(seed)).rejects.toThrow(/Authorization/i);
    } finally {
      await nats.stop();
    }
  });

  it("keeps a key with --keep-existing, rotates it without, and refuses a bad id or another region", async () => {
    const first = parseJsonOutput<Enrolled>(await enroll("gpu-node-2", "us-east"), "enroll");
    const kept = parseJsonOutput<Enrolled>(await enroll("gpu-node-2", "us-east", "--keep-existing"), "enroll again");
    expect(kept.publicKey).toBe(first.publicKey);
    const rotated = parseJsonOutput<Enrolled>(await enroll("gpu-node-2", "us-east"), "re-enroll");
    expect(rotated.publicKey).not.toBe(first.publicKey);
    const moved = await enroll("gpu-node-2", "eu-west", "--keep-existing");
    expect(moved.code).not.toBe(0);
    expect(moved.stderr).toMatch(/enrolled in region us-east/);
    const bad = await enroll("node.*", "eu-west");
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/^capa: invalid argument: agent id/);
  });
});
