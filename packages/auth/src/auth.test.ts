import { describe, expect, it } from "vitest";
import {
  actingTenant,
  authorize,
  ForbiddenError,
  KeyTable,
  keyIdViolations,
  MalformedTokenError,
  mayMint,
  mayReadProvider,
  mayReadTenant,
  mintKey,
  newKeyViolations,
  PERMISSIONS,
  type Principal,
  parseKeyRecord,
  parseToken,
  type Role,
  ruleFor,
  shortMethod,
  UnauthenticatedError,
} from "./index.js";

const fixed = (byte: number) => (n: number) => Buffer.alloc(n, byte);
const p = (role: Role, extra: Partial<Principal> = {}): Principal => ({
  keyId: "0123456789abcdef",
  name: "t",
  role,
  tenant: role === "tenant" ? "acme" : "",
  provider: role === "provider" ? "lambda" : "",
  ...extra,
});

describe("API keys", () => {
  it("mints capa_<16 hex>_<43 base64url>, storing only the SHA-256 of the secret", () => {
    const { token, record } = mintKey(
      { role: "tenant", tenant: "acme", name: "bob", createdBy: "x", nowMs: 5 },
      fixed(1),
    );
    expect(token).toBe(`capa_0101010101010101_${Buffer.alloc(32, 1).toString("base64url")}`);
    expect(record).toMatchObject({ keyId: "0101010101010101", role: "tenant", tenant: "acme", provider: "" });
    expect(record.secretHash).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(record)).not.toContain(parseToken(token).secret);
  });

  it.each([
    ["", "empty"],
    ["capa_0123_abc", "short"],
    [`capa_0123456789ABCDEF_${"a".repeat(43)}`, "upper-case key id"],
    [`capa_0123456789abcdef_${"a".repeat(42)}`, "secret one short"],
    [`capa_0123456789abcdef_${"a".repeat(43)}x`, "secret one long"],
    [`xapa_0123456789abcdef_${"a".repeat(43)}`, "prefix"],
    [`capa_0123456789abcdef_${"a".repeat(42)}=`, "padding"],
  ])("refuses the token %j (%s)", (token) => {
    expect(() => parseToken(token)).toThrow(MalformedTokenError);
  });

  it("authenticates a Bearer token against the table; unknown, wrong or revoked keys are UNAUTHENTICATED", () => {
    const table = new KeyTable();
    const a = mintKey({ role: "operator", name: "ops", createdBy: "x", nowMs: 0 });
    table.put(a.record);
    expect(table.authenticate(`Bearer ${a.token}`)).toMatchObject({ role: "operator", keyId: a.record.keyId });
    expect(table.authenticate(`bearer  ${a.token} `).name).toBe("ops");
    const wrong = `capa_${a.record.keyId}_${"A".repeat(43)}`;
    for (const header of [undefined, "", a.token, `Basic ${a.token}`, `Bearer ${wrong}`, "Bearer garbage"])
      expect(() => table.authenticate(header)).toThrow(UnauthenticatedError);
    table.remove(a.record.keyId);
    expect(() => table.authenticate(`Bearer ${a.token}`)).toThrow(/unknown or revoked/);
  });

  it("never echoes a secret in an error", () => {
    const table = new KeyTable();
    const token = `capa_0123456789abcdef_${"s".repeat(43)}`;
    try {
      table.authenticate(`Bearer ${token}`);
    } catch (err) {
      expect((err as Error).message).not.toContain("s".repeat(43));
    }
  });

  it.each([
    [{ role: "tenant", name: "bob", tenant: "acme", provider: "" }, []],
    [{ role: "tenant", name: "bob", tenant: "", provider: "" }, ["tenant"]],
    [{ role: "provider", name: "p", tenant: "", provider: "lambda" }, []],
    [{ role: "provider", name: "p", tenant: "acme", provider: "" }, ["tenant", "provider"]],
    [{ role: "operator", name: "", tenant: "", provider: "" }, ["name"]],
    [{ role: "root", name: "x", tenant: "", provider: "" }, ["role"]],
  ])("new key %j → violations %j", (input, fields) => {
    expect(newKeyViolations(input).map((v) => v.field)).toEqual(fields);
  });

  it("checks key ids and stored records field by field", () => {
    expect(keyIdViolations("0123456789abcdef")).toEqual([]);
    expect(keyIdViolations("../etc")).toHaveLength(1);
    const { record } = mintKey({ role: "admin", name: "a", createdBy: "b", nowMs: 1 });
    expect(parseKeyRecord(JSON.parse(JSON.stringify(record)))).toEqual(record);
    expect(parseKeyRecord({ ...record, role: "root" })).toBeUndefined();
    expect(parseKeyRecord({ ...record, secretHash: "x" })).toBeUndefined();
    expect(parseKeyRecord({ ...record, role: "tenant", tenant: "" })).toBeUndefined();
    expect(parseKeyRecord("garbage")).toBeUndefined();
  });
});

describe("permissions", () => {
  it("normalises method paths", () => {
    expect(shortMethod("/capa.v1.JobService/SubmitJob")).toBe("JobService/SubmitJob");
    expect(shortMethod("JobService/SubmitJob")).toBe("JobService/SubmitJob");
  });

  it.each([
    ["tenant", "/capa.v1.JobService/SubmitJob", true],
    ["provider", "/capa.v1.JobService/SubmitJob", false],
    ["tenant", "/capa.v1.OperatorService/SetPolicy", false],
    ["tenant", "/capa.v1.OperatorService/DrainAgent", false],
    ["tenant", "/capa.v1.BillingService/SetTenantLimits", false],
    ["tenant", "/capa.v1.AuthService/CreateKey", false],
    ["provider", "/capa.v1.AuthService/RevokeKey", false],
    ["tenant", "/capa.v1.AuditService/ListAudit", false],
    ["provider", "/capa.v1.BillingService/GetEarnings", true],
    ["tenant", "/capa.v1.BillingService/GetEarnings", false],
    ["operator", "/capa.v1.OperatorService/SetPolicy", true],
    ["admin", "/capa.v1.AuthService/CreateKey", true],
    ["tenant", "/capa.v1.NewService/Unlisted", false],
    ["operator", "/capa.v1.NewService/Unlisted", true],
  ] as const)("%s calling %s → allowed %s", (role, method, allowed) => {
    if (allowed) expect(() => authorize(p(role), method)).not.toThrow();
    else expect(() => authorize(p(role), method)).toThrow(ForbiddenError);
  });

  it("audits exactly the mutating calls", () => {
    const mutating = Object.entries(PERMISSIONS)
      .filter(([, r]) => r.mutating)
      .map(([m]) => m);
    expect(mutating.sort()).toEqual(
      [
        "AuthService/CreateKey",
        "AuthService/RevokeKey",
        "AuthService/SetTenantPolicy",
        "BillingService/SetTenantLimits",
        "JobService/CancelJob",
        "JobService/SubmitJob",
        "OperatorService/DrainAgent",
        "OperatorService/SetPolicy",
        "ScheduleService/ApplySchedule",
        "ScheduleService/DeleteSchedule",
        "ScheduleService/TriggerSchedule",
        "ServiceService/AbortRollout",
        "ServiceService/ApplyService",
        "ServiceService/DeleteService",
        "ServiceService/PromoteRollout",
      ].sort(),
    );
    expect(ruleFor("/x.Y/Z").mutating).toBe(true);
  });
});

describe("tenant scoping", () => {
  it("a tenant key acts for its own tenant only; an operator names the tenant it acts for", () => {
    expect(actingTenant(p("tenant"), "", "")).toBe("acme");
    expect(actingTenant(p("tenant"), "acme", "")).toBe("acme");
    expect(() => actingTenant(p("tenant"), "globex", "")).toThrow(ForbiddenError);
    expect(actingTenant(p("operator"), "globex", "")).toBe("globex");
    expect(actingTenant(p("admin"), "", "")).toBe("");
    expect(() => actingTenant(p("provider"), "", "")).toThrow(ForbiddenError);
  });

  it("reads: own tenant, own provider, or anything for operators", () => {
    expect(mayReadTenant(p("tenant"), "acme")).toBe(true);
    expect(mayReadTenant(p("tenant"), "globex")).toBe(false);
    expect(mayReadTenant(p("provider"), "acme")).toBe(false);
    expect(mayReadTenant(p("operator"), "globex")).toBe(true);
    expect(mayReadProvider(p("provider"), "lambda")).toBe(true);
    expect(mayReadProvider(p("provider"), "")).toBe(false);
    expect(mayReadProvider(p("provider"), "aws")).toBe(false);
  });

  it("operators mint tenant and provider keys; only admins mint operator and admin keys", () => {
    expect(mayMint("operator", "tenant")).toBe(true);
    expect(mayMint("operator", "provider")).toBe(true);
    expect(mayMint("operator", "operator")).toBe(false);
    expect(mayMint("operator", "admin")).toBe(false);
    expect(mayMint("admin", "admin")).toBe(true);
    expect(mayMint("tenant", "tenant")).toBe(false);
    expect(mayMint("provider", "provider")).toBe(false);
  });
});
