/**
 * Secrets never leave the scheduler except to the agent that runs the task: a job's secret env values (submitted
 * over gRPC and with `capa submit --secret` / `--secret-file`) must not appear in any RPC answer, CLI output, log
 * line of the scheduler (its pino output captured at trace level) or audit entry; the assignment the agent reads
 * carries them in clear.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type * as pb from "@capa/api";
import { waitFor } from "@capa/testkit";
import type { ServiceError } from "@grpc/grpc-js";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assertCliBuilt, runCapa } from "./cli-harness.js";
import { type Clients, FakeAgent, type Harness, rpc, spec, startHarness, watch } from "./scheduler-harness.js";

const SECRET = "hf_TOPSECRET_b7d1e9";
const FILE_SECRET = "file_TOPSECRET_42aa";
const CLI_SECRET = "cli_TOPSECRET_9c3f";

describe("secrets stay secret", () => {
  const logLines: string[] = [];
  let h: Harness;
  let agent: FakeAgent;
  let tenant: Clients;
  let dir: string;
  const answers: unknown[] = [];
  const keep = <T>(x: T): T => {
    answers.push(x);
    return x;
  };

  beforeAll(async () => {
    assertCliBuilt();
    const logger = pino({ level: "trace" }, { write: (line: string) => void logLines.push(line) });
    h = await startHarness({ logger });
    agent = new FakeAgent(h, "secret-agent-1").start();
    tenant = await h.asTenant("keeper");
    dir = mkdtempSync(join(tmpdir(), "capa-secrets-"));
  });
  afterAll(async () => {
    agent?.silence();
    await h?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("delivers the secret to the agent only, answers *** everywhere else, and logs and audits no secret", async () => {
    const s = spec({ name: "with-secret" }, ["sh", "-c", "echo $HF_TOKEN"]);
    s.template!.env = { HF_TOKEN: SECRET, MODE: "x" };
    s.template!.secretEnvNames = ["HF_TOKEN"];
    const { job } = keep(
      await rpc<pb.SubmitJobResponse>((cb) => tenant.jobs.submitJob({ requestId: "s-1", tenant: "", spec: s }, cb)),
    );
    expect(job!.spec!.template!.env.HF_TOKEN).toBe("***");
    const w = watch({ ...h, jobs: tenant.jobs }, job!.id);
    const [assignment] = await waitFor(async () => {
      const a = await agent.assignments();
      return a.length > 0 && a;
    });
    expect(assignment!.template.env.HF_TOKEN).toBe(SECRET);
    await agent.report(assignment!, "running");
    await agent.log(assignment!, "the task's own output\n", 1);
    await agent.report(assignment!, "succeeded");
    await w.done;
    answers.push(w.events);
    keep(await rpc((cb) => tenant.jobs.getJob({ jobId: job!.id }, cb)));
    keep(await rpc((cb) => tenant.jobs.listJobs({ tenant: "", states: [], limit: 0, pageToken: "" }, cb)));
    keep(await rpc((cb) => h.jobs.listJobs({ tenant: "", states: [], limit: 0, pageToken: "" }, cb)));
    keep(await rpc((cb) => h.operator.explainJob({ jobId: job!.id }, cb)).catch((e: ServiceError) => e.details));
    keep(
      await rpc((cb) => tenant.jobs.cancelJob({ jobId: job!.id, reason: "done" }, cb)).catch(
        (e: ServiceError) => e.details,
      ),
    );
    // Refusals that carry the secret in the request must not echo it.
    const bad = spec({ name: "bad name!" }, ["true"]);
    bad.template!.env = { HF_TOKEN: SECRET, "BAD NAME": SECRET };
    bad.template!.secretEnvNames = ["HF_TOKEN", "MISSING"];
    const refused = await rpc((cb) => tenant.jobs.submitJob({ requestId: "s-2", tenant: "", spec: bad }, cb)).catch(
      (e: ServiceError) => e,
    );
    expect((refused as ServiceError).code).toBe(3);
    answers.push((refused as ServiceError).details);
    const tooLong = spec({}, ["true"]);
    tooLong.template!.env = { HF_TOKEN: SECRET.repeat(1000) };
    tooLong.template!.secretEnvNames = ["HF_TOKEN"];
    answers.push(
      await rpc((cb) => tenant.jobs.submitJob({ requestId: "s-3", tenant: "", spec: tooLong }, cb)).catch(
        (e: ServiceError) => e.details,
      ),
    );

    // The CLI: --secret and --secret-file, then what status and jobs print.
    const secretFile = join(dir, "secrets.env");
    writeFileSync(secretFile, `# one per line\nFILE_TOKEN=${FILE_SECRET}\n`);
    chmodSync(secretFile, 0o600);
    const env = { CAPA_TOKEN: tenant.token, CAPA_GRPC_ADDR: h.scheduler.grpcAddress };
    const submitted = await runCapa(
      ["submit", "--json", "--secret", `CLI_TOKEN=${CLI_SECRET}`, "--secret-file", secretFile, "--", "true"],
      { env },
    );
    expect(submitted.stderr).toBe("");
    const cliJob = (JSON.parse(submitted.stdout) as { job: { id: string; spec: { template: { env: object } } } }).job;
    expect(cliJob.spec.template.env).toEqual({ CLI_TOKEN: "***", FILE_TOKEN: "***" });
    const delivered = await waitFor(async () => {
      const a = (await agent.assignments()).find((t) => t.jobId === cliJob.id);
      return a?.template.env;
    });
    expect(delivered).toMatchObject({ CLI_TOKEN: CLI_SECRET, FILE_TOKEN: FILE_SECRET });
    for (const args of [
      ["status", cliJob.id],
      ["status", cliJob.id, "--json"],
      ["jobs", "--json"],
    ]) {
      const out = await runCapa(args, { env });
      expect(out.code, out.stderr).toBe(0);
      answers.push(out.stdout, out.stderr, submitted.stdout);
    }

    const audit = await rpc<pb.ListAuditResponse>((cb) =>
      h.audit.listAudit({ fromUnixMs: 0, toUnixMs: 0, actor: "", method: "", tenant: "", limit: 1000 }, cb),
    );
    expect(audit.entries.filter((e) => e.method === "JobService/SubmitJob").length).toBeGreaterThanOrEqual(4);

    const secrets = [SECRET, FILE_SECRET, CLI_SECRET];
    const answerText = JSON.stringify(answers);
    const auditText = JSON.stringify(audit);
    const logText = logLines.join("");
    // The captures are real: the scheduler logged (at trace level) and the answers carry the masked jobs.
    expect(logText).toContain("scheduler started");
    expect(logText).toContain("API key created");
    expect(answerText).toContain("***");
    for (const s of secrets) {
      expect(answerText.includes(s), `an RPC answer or CLI output carries ${s}`).toBe(false);
      expect(auditText.includes(s), `an audit entry carries ${s}`).toBe(false);
      expect(logText.includes(s), `a scheduler log line carries ${s}`).toBe(false);
    }
    console.log(
      `secrets: 0 of ${secrets.length} found in ${answers.length} answers/outputs, ${audit.entries.length} audit entries, ${logLines.length} log lines`,
    );
  });
});
