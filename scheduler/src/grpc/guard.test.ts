import {
  AuditServiceService,
  AuthServiceService,
  BillingServiceService,
  JobServiceService,
  OperatorServiceService,
  ScheduleServiceService,
  ServiceServiceService,
} from "@capa/api";
import { PERMISSIONS, shortMethod } from "@capa/auth";
import { defaultJobSpec, type Job } from "@capa/domain";
import { describe, expect, it } from "vitest";
import { admitWithTenantPolicy, withDefaultMaxPrice } from "../auth/admission.js";
import { MalformedRequest } from "./guard.js";
import { publicJobToPb, SECRET_MASK } from "./scope.js";

const SERVICES = [
  JobServiceService,
  OperatorServiceService,
  BillingServiceService,
  AuthServiceService,
  AuditServiceService,
  ServiceServiceService,
  ScheduleServiceService,
];

describe("the permission table", () => {
  it("lists every method of every served service (an unlisted one would be operator-only)", () => {
    const served = SERVICES.flatMap((s) => Object.values(s).map((m) => shortMethod(m.path)));
    expect(served.filter((m) => !(m in PERMISSIONS))).toEqual([]);
    expect(Object.keys(PERMISSIONS).filter((m) => !served.includes(m))).toEqual([]);
  });
});

describe("tenant ceilings", () => {
  const policy = { tenant: "acme", maxPriority: 10, defaultMaxPrice: 5_000_000 };
  it("refuses a priority above the tenant's ceiling with the field path", () => {
    expect(() => admitWithTenantPolicy(policy, { priority: 11, maxPricePerGpuHour: 0 })).toThrow(
      /spec\.priority: must be at most 10/,
    );
    expect(admitWithTenantPolicy(policy, { priority: 10, maxPricePerGpuHour: 0 }).priority).toBe(10);
  });
  it("places an uncapped job as if it named the default max price; a named one is kept", () => {
    expect(withDefaultMaxPrice({ maxPricePerGpuHour: 0 }, () => 7).maxPricePerGpuHour).toBe(7);
    expect(withDefaultMaxPrice({ maxPricePerGpuHour: 3 }, () => 7).maxPricePerGpuHour).toBe(3);
  });
});

describe("secrets in answers", () => {
  it("masks the values of secret env entries, and only those", () => {
    const spec = defaultJobSpec({
      template: {
        command: ["true"],
        env: { HF_TOKEN: "hf_s3cret", MODE: "fast" },
        workingDir: "",
        killGraceSeconds: 1,
        secretEnvNames: ["HF_TOKEN"],
      },
    });
    const job = { id: "j1", tenant: "acme", spec, state: "pending", tasks: [] } as unknown as Job;
    const out = publicJobToPb({ ...job, reason: "", createdAtMs: 0, updatedAtMs: 0 } as Job);
    expect(out.spec?.template?.env).toEqual({ HF_TOKEN: SECRET_MASK, MODE: "fast" });
    expect(JSON.stringify(out)).not.toContain("hf_s3cret");
    expect(job.spec.template.env.HF_TOKEN).toBe("hf_s3cret");
  });
});

describe("MalformedRequest", () => {
  it("carries the decoder's reason", () => {
    expect(new MalformedRequest("index out of range").reason).toBe("index out of range");
  });
});
