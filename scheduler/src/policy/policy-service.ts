/**
 * Placement policy: which profile is active and weight overrides, stored in KV `capa_policy/active` (who, when,
 * revision) with CAS; custom profile documents in `capa_policy/profile.<name>`. Every replica applies stored
 * changes to its engine (at start and through the KV watch). Input is validated by the engine's own parser.
 */
import { jsonCodec, type TypedKv } from "@capa/bus";
import { ConflictError, type FieldViolation, ValidationError } from "@capa/domain";
import type { Logger } from "pino";
import { type PlacementEngineApi, type ProfileLike, parseProfile } from "../planner/engine.js";
import { POLICY_KEY, PROFILE_PREFIX } from "../store/buckets.js";
import { readAll } from "../store/read-all.js";
import type { PolicyRecord, ProfileDocument } from "../store/records.js";
import type { WatchedEntry } from "../store/watch.js";

export interface PolicyView {
  profile: string;
  profileJson: string;
  availableProfiles: string[];
  updatedBy: string;
  updatedAtMs: number;
  revision: number;
}

export interface SetPolicyInput {
  profile: string;
  profileDocument: string;
  weights: Record<string, number>;
  actor: string;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const MAX_DOCUMENT = 64 * 1024;
const MAX_WEIGHT = 1000;

export class PolicyService {
  /** Profiles as defined (built-in or documents), before weight overrides. */
  private readonly bases = new Map<string, ProfileLike>();
  private record: PolicyRecord | undefined;
  private revision = 0;

  constructor(
    private readonly engine: PlacementEngineApi,
    private readonly policyKv: TypedKv<PolicyRecord>,
    private readonly profilesKv: TypedKv<ProfileDocument>,
    private readonly now: () => number,
    private readonly logger: Logger,
  ) {
    for (const p of engine.profiles()) this.bases.set(p.name, structuredClone(p));
  }

  async load(): Promise<void> {
    const bad = (key: string, err: unknown) => this.logger.warn({ err, key }, "skipping an unreadable policy entry");
    for (const doc of await readAll(
      this.profilesKv.kv,
      jsonCodec<ProfileDocument>(),
      (k) => k.startsWith(PROFILE_PREFIX),
      bad,
    ))
      this.adoptDocument(doc.value);
    const [active] = await readAll(this.policyKv.kv, jsonCodec<PolicyRecord>(), (k) => k === POLICY_KEY, bad);
    if (active) this.adoptActive(active.value, active.revision);
  }

  get(): PolicyView {
    const active = this.engine.activeProfile();
    return {
      profile: active.name,
      profileJson: JSON.stringify(active),
      availableProfiles: this.engine
        .profiles()
        .map((p) => p.name)
        .sort(),
      updatedBy: this.record?.updatedBy ?? "",
      updatedAtMs: this.record?.updatedAtMs ?? 0,
      revision: this.revision,
    };
  }

  async set(input: SetPolicyInput): Promise<PolicyView> {
    const violations: FieldViolation[] = [];
    const bad = (field: string, message: string) => violations.push({ field, message });
    let document: ProfileLike | undefined;
    if (input.profileDocument.length > MAX_DOCUMENT) bad("profile_document", `must be at most ${MAX_DOCUMENT} bytes`);
    else if (input.profileDocument.trim() !== "") {
      try {
        document = parseProfile(input.profileDocument);
      } catch (err) {
        bad("profile_document", (err as Error).message);
      }
    }
    const name = input.profile || document?.name || "";
    if (name === "") bad("profile", "must name a profile or give a profile_document");
    else if (!NAME.test(name)) bad("profile", "must be a short name of letters, digits, '.', '_' or '-'");
    else if (document && document.name !== name) bad("profile", `differs from the document's name "${document.name}"`);
    else if (!document && !this.bases.has(name)) bad("profile", `unknown profile "${name}"`);
    if (input.actor.length > 128) bad("actor", "must be at most 128 characters");
    const base = document ?? this.bases.get(name);
    const weights = Object.entries(input.weights);
    if (weights.length > 64) bad("weights", "must have at most 64 entries");
    for (const [k, v] of weights) {
      if (!Number.isFinite(v) || v < 0 || v > MAX_WEIGHT)
        bad(`weights[${k.slice(0, 40)}]`, `must be in 0..${MAX_WEIGHT}`);
    }
    if (violations.length === 0 && base && weights.length > 0) {
      try {
        parseProfile(JSON.stringify(withWeights(base, input.weights)));
      } catch (err) {
        bad("weights", (err as Error).message);
      }
    }
    if (violations.length > 0) throw new ValidationError(violations);

    const nowMs = this.now();
    const actor = input.actor || "unknown";
    if (document) {
      const doc: ProfileDocument = { name, document: input.profileDocument, updatedBy: actor, updatedAtMs: nowMs };
      await this.profilesKv.mutate(PROFILE_PREFIX + name, () => doc);
      this.adoptDocument(doc);
    }
    const record: PolicyRecord = { profile: name, weights: { ...input.weights }, updatedBy: actor, updatedAtMs: nowMs };
    const stored = await this.policyKv.get(POLICY_KEY);
    const revision = await this.policyKv.write(POLICY_KEY, record, stored?.revision ?? 0).catch((err) => {
      if (err instanceof ConflictError) throw new ConflictError("policy changed concurrently; read it and retry");
      throw err;
    });
    this.adoptActive(record, revision);
    return this.get();
  }

  /** A change stored by another replica (or this one, which is then a no-op). */
  observeWatched(e: WatchedEntry): void {
    if (e.deleted) return;
    const text = new TextDecoder().decode(e.value);
    if (e.key === POLICY_KEY) {
      if (e.revision > this.revision) this.adoptActive(JSON.parse(text) as PolicyRecord, e.revision);
    } else if (e.key.startsWith(PROFILE_PREFIX)) {
      this.adoptDocument(JSON.parse(text) as ProfileDocument);
      if (this.record) this.adoptActive(this.record, this.revision);
    }
  }

  private adoptDocument(doc: ProfileDocument): void {
    try {
      const profile = parseProfile(doc.document);
      this.bases.set(profile.name, structuredClone(profile));
      this.engine.upsertProfile(profile);
    } catch (err) {
      this.logger.warn({ err, profile: doc.name }, "ignoring a stored profile the engine refuses");
    }
  }

  private adoptActive(record: PolicyRecord, revision: number): void {
    const base = this.bases.get(record.profile);
    if (!base) {
      this.logger.warn({ profile: record.profile }, "stored active profile is unknown; keeping the current one");
      return;
    }
    try {
      // Overrides apply to the profile as defined, never on top of earlier overrides.
      for (const [name, p] of this.bases) if (name !== record.profile) this.engine.upsertProfile(structuredClone(p));
      this.engine.upsertProfile(withWeights(base, record.weights ?? {}));
      this.engine.setActiveProfile(record.profile);
      this.record = record;
      this.revision = revision;
    } catch (err) {
      this.logger.warn(
        { err, profile: record.profile },
        "stored policy refused by the engine; keeping the current one",
      );
    }
  }
}

function withWeights(base: ProfileLike, weights: Record<string, number>): ProfileLike {
  return { ...structuredClone(base), weights: { ...base.weights, ...weights } };
}
