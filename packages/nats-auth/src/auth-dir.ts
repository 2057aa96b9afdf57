/**
 * The operator's NATS auth directory: the only file I/O of this package.
 *
 * ```
 * <dir>/scheduler.nk       the scheduler's seed (0600), created once
 * <dir>/agents.json        enrolled agents: id, region, public key (no secrets)
 * <dir>/agents/<id>.nk     each agent's seed (0600): hand it to the provider, the agent reads it (--nats-nkey)
 * <dir>/auth.conf          the rendered authorization block; include it from the nats-server config
 * ```
 *
 * Every change rewrites auth.conf atomically (temp file + rename), so a reload never reads half a file. Enrolling an
 * agent id again rotates its key: the old seed stops working at the next reload.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { assertToken } from "@capa/bus";
import { AuthDirError, InvalidIdentityError } from "./errors.js";
import { newUserKeys, publicKeyOfSeed } from "./keys.js";
import { type EnrolledAgent, renderAuthorization } from "./render.js";

export interface Enrolment {
  agentId: string;
  region: string;
  publicKey: string;
  /** The seed file written for the agent (0600). */
  seedFile: string;
  seed: string;
}

export interface AuthDir {
  readonly dir: string;
  readonly schedulerSeedFile: string;
  /** The authorization block to include from the nats-server config. */
  readonly authConfFile: string;
  schedulerSeed(): string;
  agents(): EnrolledAgent[];
  /** Enrolls (or re-keys) an agent and rewrites auth.conf; reload the server to apply it. */
  enroll(agent: { agentId: string; region: string }, nowMs?: number): Enrolment;
  /** Removes an agent's user and seed; returns false when it was not enrolled. */
  revoke(agentId: string): boolean;
  /** The seed file of an enrolled agent. */
  agentSeedFile(agentId: string): string;
}

/** Opens the directory, creating it (with a new scheduler key) when it does not exist yet. */
export function openAuthDir(dir: string): AuthDir {
  const schedulerSeedFile = join(dir, "scheduler.nk");
  const agentsFile = join(dir, "agents.json");
  const authConfFile = join(dir, "auth.conf");
  mkdirSync(join(dir, "agents"), { recursive: true, mode: 0o700 });
  if (!existsSync(schedulerSeedFile)) writeSecret(schedulerSeedFile, newUserKeys().seed);

  const schedulerSeed = () => readSecret(schedulerSeedFile);
  const agents = (): EnrolledAgent[] => {
    if (!existsSync(agentsFile)) return [];
    try {
      const parsed = JSON.parse(readFileSync(agentsFile, "utf8")) as { agents?: EnrolledAgent[] };
      if (!Array.isArray(parsed.agents)) throw new Error("no agents array");
      return parsed.agents;
    } catch (cause) {
      throw new AuthDirError(`${agentsFile} is not an agents file written by capa: ${(cause as Error).message}`, {
        cause,
      });
    }
  };
  const agentSeedFile = (agentId: string) => join(dir, "agents", `${assertToken(agentId, "agent id")}.nk`);
  const save = (list: EnrolledAgent[]) => {
    // Render first: an invalid list never reaches the disk.
    const conf = renderAuthorization({ schedulerKeys: [publicKeyOfSeed(schedulerSeed())], agents: list });
    atomicWrite(agentsFile, `${JSON.stringify({ agents: list }, null, 2)}\n`, 0o644);
    atomicWrite(authConfFile, conf, 0o644);
  };
  if (!existsSync(authConfFile)) save(agents());

  return {
    dir,
    schedulerSeedFile,
    authConfFile,
    schedulerSeed,
    agents,
    agentSeedFile,
    enroll({ agentId, region }, nowMs = Date.now()) {
      try {
        assertToken(agentId, "agent id");
        assertToken(region, "region");
      } catch (cause) {
        throw new InvalidIdentityError((cause as Error).message, { cause });
      }
      const keys = newUserKeys();
      const seedFile = agentSeedFile(agentId);
      const list = agents().filter((a) => a.agentId !== agentId);
      list.push({ agentId, region, publicKey: keys.publicKey, enrolledAtMs: nowMs });
      writeSecret(seedFile, keys.seed);
      save(list);
      return { agentId, region, publicKey: keys.publicKey, seedFile, seed: keys.seed };
    },
    revoke(agentId) {
      const before = agents();
      const list = before.filter((a) => a.agentId !== agentId);
      if (list.length === before.length) return false;
      save(list);
      rmSync(agentSeedFile(agentId), { force: true });
      return true;
    },
  };
}

/** Reads a seed file (an agent's or the scheduler's). */
export function readSeedFile(path: string): string {
  const seed = readSecret(path);
  publicKeyOfSeed(seed);
  return seed;
}

/** Asks a running nats-server to re-read its config (and so the included auth.conf). */
export function reloadNatsServer(pid: number): void {
  process.kill(pid, "SIGHUP");
}

function readSecret(path: string): string {
  try {
    return readFileSync(path, "utf8").trim();
  } catch (cause) {
    throw new AuthDirError(`cannot read nkey seed ${path}: ${(cause as Error).message}`, { cause });
  }
}

function writeSecret(path: string, seed: string): void {
  atomicWrite(path, `${seed}\n`, 0o600);
}

function atomicWrite(path: string, text: string, mode: number): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}
