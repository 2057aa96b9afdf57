import { describe, expect, it } from "vitest";
import { renderReplicaContext } from "./explain.js";

describe("capa explain on a service replica", () => {
  it("says which scale decision added it and lists its region's scale events", () => {
    const now = 1_000_000;
    const text = renderReplicaContext(
      {
        service: "echo",
        revision: 1,
        currentRevision: 2,
        region: "eu-west",
        cause: "scale-up 1→3 (revision 1): 22.0 req/s at 5 per replica: held for 2s",
        removing: true,
        events: [
          {
            atMs: now - 4_000,
            region: "eu-west",
            kind: "scale-down",
            fromReplicas: 3,
            toReplicas: 1,
            reason: "idle",
            jobId: "",
          },
          {
            atMs: now - 60_000,
            region: "",
            kind: "rollout",
            fromReplicas: 0,
            toReplicas: 100,
            reason: "promoted",
            jobId: "",
          },
        ],
      },
      now,
    );
    expect(text.split("\n")).toEqual([
      "service echo, region eu-west, revision 1 (current 2), being removed",
      "replica added by: scale-up 1→3 (revision 1): 22.0 req/s at 5 per replica: held for 2s",
      "scale events (newest first):",
      "  4s ago  eu-west  scale-down 3→1  idle",
      "  1m ago  -  rollout 0→100  promoted",
    ]);
  });
});
