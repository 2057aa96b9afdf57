/**
 * Task drivers end to end: a real nats-server, the scheduler over gRPC, and real agents. One agent has the
 * container driver when podman is present (a tiny local busybox image, see container-image.ts); one has only the
 * process driver. Everywhere: agents advertise their drivers and an image job is never placed on a process-only
 * agent (driver-missing); a process job runs as before. With podman: the container sees its GPUs the NVIDIA
 * Container Toolkit way and its environment, its output reaches the logs, its exit code the job, and a cancel
 * kills it (SIGTERM through the CLI's signal proxy; the container is gone afterwards).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type AgentHandle, startAgent } from "@capa/agent";
import * as pb from "@capa/api";
import { waitFor } from "@capa/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { containersNamed, podmanPresent, prepareTestImage, TEST_IMAGE } from "./container-image.js";
import {
  finalJob,
  getJob,
  H100_PRICE,
  type Harness,
  logs,
  rpc,
  silent,
  spec,
  startHarness,
  stateName,
  submit,
} from "./scheduler-harness.js";

const PODMAN = podmanPresent();
const CONTAINER_AGENT = "drv-container";
const PROCESS_AGENT = "drv-process";

describe(`task drivers (podman ${PODMAN ? "present: containers run for real" : "absent: process driver only"})`, () => {
  let h: Harness;
  const agents: AgentHandle[] = [];
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "capa-e2e-container-"));
    if (PODMAN) prepareTestImage(dir);
    h = await startHarness();
    const start = async (agentId: string, pool: string, containerRuntime: string) =>
      startAgent({
        ...(await h.agentNats(agentId, "eu-west")),
        agentId,
        region: "eu-west",
        labels: { pool },
        prices: [H100_PRICE],
        simulateGpus: "4xH100-80GB",
        workDir: join(dir, agentId),
        advertIntervalMs: 500,
        heartbeatIntervalMs: 200,
        advertTtlSeconds: 10,
        containerRuntime,
        logger: silent,
      });
    agents.push(await start(PROCESS_AGENT, "p", "none"));
    if (PODMAN) agents.push(await start(CONTAINER_AGENT, "c", "podman"));
    const expected = PODMAN ? [PROCESS_AGENT, CONTAINER_AGENT] : [PROCESS_AGENT];
    await waitFor(
      async () => {
        const r = await rpc<pb.ListAgentsResponse>((cb) =>
          h.operator.listAgents({ region: "", limit: 0, pageToken: "" }, cb),
        );
        return expected.every((id) => r.agents.some((a) => a.agentId === id && a.status === "ready"));
      },
      { what: "the agents registered" },
    );
  }, 120_000);
  afterAll(async () => {
    for (const a of agents) await a.stop();
    await h?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const final = (jobId: string) => finalJob(h, jobId, 60_000);

  it("agents advertise their drivers", () => {
    expect(agents[0]!.advert().drivers).toEqual(["process"]);
    if (PODMAN) expect(agents[1]!.advert().drivers).toEqual(["process", "container"]);
  });

  it("an image job is not placed on a process-only agent: driver-missing", async () => {
    const { job } = await submit(
      h,
      spec({
        nodeSelector: { pool: "p" },
        template: {
          command: ["true"],
          env: {},
          workingDir: "",
          killGraceSeconds: 1,
          image: TEST_IMAGE,
          secretEnvNames: [],
        },
      }),
    );
    const explanation = await waitFor(
      async () =>
        (await rpc<pb.ExplainJobResponse>((cb) => h.operator.explainJob({ jobId: job!.id }, cb)).catch(() => undefined))
          ?.explanation,
      { what: "an explanation" },
    );
    expect(explanation.outcome).not.toBe("placed");
    expect(explanation.rejections["driver-missing"]).toBeGreaterThan(0);
    expect(stateName((await getJob(h, job!.id)).state)).toBe("PENDING");
    await rpc((cb) => h.jobs.cancelJob({ jobId: job!.id, reason: "test over" }, cb));
  });

  it("a process job runs on the process driver", async () => {
    const { job } = await submit(
      h,
      spec({ nodeSelector: { pool: "p" } }, ["sh", "-c", "echo on $CUDA_VISIBLE_DEVICES"]),
    );
    const done = await final(job!.id);
    expect(stateName(done.state)).toBe("SUCCEEDED");
    const l = logs(h, job!.id, false);
    await l.done;
    expect(l.text(pb.LogStream.LOG_STREAM_STDOUT)).toMatch(/^on \d$/m);
  });

  it.runIf(PODMAN)("a container job: GPU env, task env, logs and the exit code", async () => {
    const { job } = await submit(
      h,
      spec({
        gpusPerReplica: 2,
        template: {
          command: [
            "sh",
            "-c",
            'echo "cuda=$CUDA_VISIBLE_DEVICES nvidia=$NVIDIA_VISIBLE_DEVICES host=$CAPA_GPU_INDICES greeting=$GREETING task=$CAPA_TASK_ID"; ' +
              'test -f /bin/busybox && echo "in the image"; echo oops >&2; exit 5',
          ],
          env: { GREETING: "hello from the job" },
          workingDir: "",
          killGraceSeconds: 2,
          image: TEST_IMAGE,
          secretEnvNames: [],
        },
      }),
    );
    const done = await final(job!.id);
    const task = done.tasks[0]!;
    expect(task.agentId).toBe(CONTAINER_AGENT);
    expect(stateName(done.state)).toBe("FAILED");
    expect(task.exitCode).toBe(5);
    const host = task.gpuIndices.join(",");
    const l = logs(h, job!.id, false);
    await l.done;
    expect(l.text(pb.LogStream.LOG_STREAM_STDOUT)).toContain(
      `cuda=0,1 nvidia=${host} host=${host} greeting=hello from the job task=${task.id}\nin the image\n`,
    );
    expect(l.text(pb.LogStream.LOG_STREAM_STDERR)).toContain("oops");
    expect(containersNamed(`capa-${task.id}-`)).toEqual([]);
    // Provenance: the image the agent ran, by digest (an imported image has no registry digest: its id).
    expect(task.imageDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it.runIf(PODMAN)("cancel kills the container (SIGTERM, no handler needed), and it is gone", async () => {
    const { job } = await submit(
      h,
      spec({
        template: {
          command: ["sh", "-c", "echo started; sleep 300"],
          env: {},
          workingDir: "",
          killGraceSeconds: 10,
          image: TEST_IMAGE,
          secretEnvNames: [],
        },
      }),
    );
    const l = logs(h, job!.id, true);
    await waitFor(() => l.text().includes("started"), { what: "the container started", timeoutMs: 30_000 });
    const running = await getJob(h, job!.id);
    const name = `capa-${running.tasks[0]!.id}-${running.tasks[0]!.epoch}`;
    expect(containersNamed(name)).toEqual([name]);
    await rpc((cb) => h.jobs.cancelJob({ jobId: job!.id, reason: "test cancel" }, cb));
    const done = await final(job!.id);
    expect(stateName(done.state)).toBe("CANCELLED");
    await l.done; // a follow ends once the job is final
    await waitFor(() => containersNamed(name).length === 0, { what: "the container removed" });
  });
});
