import { NotFoundError, UnavailableError, ValidationError } from "@capa/domain";
import { describe, expect, it } from "vitest";
import { retrainOnDrift } from "./drift.js";

const fire = {
  tenant: "acme",
  service: "chat",
  revision: 3,
  metric: "drift_score",
  value: 0.9,
  threshold: 0.5,
  trigger: "retrain-chat",
  region: "eu-west",
};

describe("drift → schedule trigger", () => {
  it("queues one trigger per service revision, with the drift as its reason", async () => {
    const calls: unknown[] = [];
    const retrain = retrainOnDrift({
      trigger: async (tenant, name, input) => {
        calls.push({ tenant, name, ...input });
        return { triggerId: input.triggerId, queued: calls.length === 1 };
      },
    });
    expect(await retrain(fire)).toBe("schedule retrain-chat run queued (trigger drift-chat-r3)");
    expect(await retrain(fire)).toBe("schedule retrain-chat had it already");
    expect(calls[0]).toEqual({
      tenant: "acme",
      name: "retrain-chat",
      triggerId: "drift-chat-r3",
      reason: "drift: drift_score 0.9 > 0.5 on service chat revision 3 (eu-west)",
    });
  });

  it("a missing or misnamed schedule is reported, a store failure is thrown (the round is retried)", async () => {
    const failing = (err: Error) => retrainOnDrift({ trigger: async () => Promise.reject(err) });
    expect(await failing(new NotFoundError("x"))(fire)).toBe("no schedule retrain-chat in tenant acme: no run started");
    expect(await failing(new ValidationError([{ field: "name", message: "bad" }]))(fire)).toContain(
      "not a schedule name",
    );
    await expect(failing(new UnavailableError("store down"))(fire)).rejects.toThrow("store down");
  });
});
