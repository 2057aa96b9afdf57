/**
 * The CLI's habits, run as the built `capa` child process the way people and scripts run it: exit statuses
 * (0 ok, 1 runtime failure, 2 usage error), `capa version`, `capa completion bash|zsh|fish` (driven through a
 * real bash), `-o json|yaml|wide|name` (and `--json`), colour only on a terminal (a real pty from `script`) and
 * never with NO_COLOR, tables fitted to $COLUMNS, `submit --watch` printing each state once, and `capa logs` of
 * a job that failed to start marking capa's own line once. Against a real scheduler with real agents.
 */
import { spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { waitFor } from "@capa/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { assertCliBuilt, CAPA_BIN, REPO_ROOT, runCapa } from "./cli-harness.js";
import { type Harness, startHarness } from "./scheduler-harness.js";
import { type MarketAgents, startMarketAgents } from "./scheduler-market.js";

const ESC = "\u001b[";

describe("capa exit statuses, version and completion (no scheduler needed)", () => {
  beforeAll(() => assertCliBuilt());

  it.each([
    ["an unknown flag", ["jobs", "--no-such-flag"]],
    ["an unknown verb", ["no-such-verb"]],
    ["a malformed flag value", ["submit", "--max-price", "1.2345678", "--", "true"]],
    ["submit without a command", ["submit", "--gpus", "1"]],
    ["an unknown output format", ["jobs", "-o", "xml"]],
    ["an unknown shell", ["completion", "tcsh"]],
    ["a missing argument", ["status"]],
  ])("exits 2 for a usage error: %s", async (_name, args) => {
    const r = await runCapa(args, { env: { CAPA_GRPC_ADDR: "127.0.0.1:1" } });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).not.toBe("");
  });

  it("exits 1 for a runtime failure and 0 for help and version", async () => {
    const unreachable = await runCapa(["jobs"], { env: { CAPA_GRPC_ADDR: "127.0.0.1:1" } });
    expect(unreachable.code).toBe(1);
    expect((await runCapa(["--help"])).code).toBe(0);
    expect((await runCapa(["jobs", "--help"])).code).toBe(0);
    const version = await runCapa(["--version"]);
    expect([version.code, version.stdout.trim()]).toEqual([0, "0.1.0 (capa.v1)"]);
  });

  it("prints the client version (the root package.json's) without a scheduler", async () => {
    const root = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { version: string };
    const r = await runCapa(["version", "--client", "-o", "json"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ client: { version: root.version, apiVersion: "capa.v1" } });
    const text = await runCapa(["version", "--client"]);
    expect(text.stdout).toBe(`client:  ${root.version} (capa.v1)\n`);
  });

  /** What bash completes for the words of a command line (the last one being completed). */
  function bashComplete(words: string[]): string[] {
    const script = spawnSync(process.execPath, [CAPA_BIN, "completion", "bash"], { encoding: "utf8" }).stdout ?? "";
    const quoted = words.map((w) => `'${w}'`).join(" ");
    const r = spawnSync(
      "bash",
      [
        "-c",
        `${script}\nCOMP_WORDS=(${quoted}); COMP_CWORD=${words.length - 1}; _capa_complete; printf '%s\\n' "\${COMPREPLY[@]}"`,
      ],
      { encoding: "utf8" },
    );
    if (r.status !== 0) throw new Error(r.stderr);
    return r.stdout.split("\n").filter(Boolean);
  }

  it("completes verbs, sub-verbs and flags in bash from the command tree", () => {
    expect(bashComplete(["capa", "su"])).toEqual(["submit"]);
    expect(bashComplete(["capa", "receipt", "v"])).toEqual(["verify"]);
    expect(bashComplete(["capa", "submit", "--gp"])).toEqual(expect.arrayContaining(["--gpus", "--gpu-model"]));
    expect(bashComplete(["capa", "--addr", "x", "jobs", "--st"])).toEqual(["--state"]);
    expect(bashComplete(["capa", "completion", "--he"])).toEqual(["--help"]);
  });

  it("prints zsh and fish scripts naming every verb", async () => {
    const zsh = await runCapa(["completion", "zsh"]);
    expect(zsh.code).toBe(0);
    expect(zsh.stdout).toMatch(/^#compdef capa\nautoload -U \+X bashcompinit && bashcompinit\n/);
    expect(zsh.stdout).toContain("complete -o default -F _capa_complete capa");
    const fish = await runCapa(["completion", "fish"]);
    expect(fish.stdout).toContain("complete -c capa -n '__fish_use_subcommand' -a submit -d");
    expect(fish.stdout).toContain("complete -c capa -n '__fish_seen_subcommand_from submit' -l gpus");
    const bashCheck = spawnSync("bash", ["-n"], { input: (await runCapa(["completion", "bash"])).stdout });
    expect(bashCheck.status).toBe(0);
  });
});

describe("capa output formats, colour, width, watch and logs against a scheduler", () => {
  let h: Harness;
  let agents: MarketAgents;
  let env: NodeJS.ProcessEnv;
  let jobId = "";
  beforeAll(async () => {
    assertCliBuilt();
    h = await startHarness();
    agents = await startMarketAgents(h, [{ agentId: "cli-habits-a1", region: "eu-west", h100: "2.00", gpus: 4 }]);
    // Tenant verbs act as the tenant of the credential (auth is on): a tenant key for "habits".
    const token = await h.mintKey("tenant", { tenant: "habits" });
    env = { CAPA_GRPC_ADDR: h.scheduler.grpcAddress, CAPA_TOKEN: token, NO_COLOR: "" };
  });
  afterAll(async () => {
    await agents?.stop();
    await h?.stop();
  });

  it("submit --watch prints each job state once and exits 0 on success", async () => {
    const r = await runCapa(
      ["submit", "--watch", "--name", "watched-job", "--gpus", "1", "--", "sh", "-c", "sleep 0.3; echo watched"],
      { env },
    );
    expect(r.code, r.stderr).toBe(0);
    const states = r.stdout
      .split("\n")
      .slice(1)
      .filter(Boolean)
      .map((l) => l.split(/\s+/)[2]);
    expect(states.filter((s) => s === "PLACED").length).toBeLessThanOrEqual(1);
    expect(states.at(-1)).toBe("SUCCEEDED");
    expect(new Set(states).size).toBe(states.length);
    jobId = /submitted job (\S+)/.exec(r.stdout)![1]!;
  });

  it("prints -o json (= --json), yaml, name and wide for read verbs", async () => {
    const json = JSON.parse((await runCapa(["jobs", "-o", "json"], { env })).stdout) as { jobs: { id: string }[] };
    const legacy = JSON.parse((await runCapa(["jobs", "--json"], { env })).stdout) as { jobs: { id: string }[] };
    expect(json.jobs.map((j) => j.id)).toEqual(legacy.jobs.map((j) => j.id));
    expect(json.jobs.map((j) => j.id)).toContain(jobId);
    const yaml = parseYaml((await runCapa(["jobs", "-o", "yaml"], { env })).stdout) as { jobs: { id: string }[] };
    expect(yaml.jobs.map((j) => j.id)).toEqual(json.jobs.map((j) => j.id));
    expect((await runCapa(["jobs", "-o", "name"], { env })).stdout).toBe(
      json.jobs.map((j) => `job/${j.id}\n`).join(""),
    );
    expect((await runCapa(["status", jobId, "-o", "name"], { env })).stdout).toBe(`job/${jobId}\n`);
    expect((await runCapa(["agents", "-o", "name"], { env: { ...env, CAPA_TOKEN: h.adminToken } })).stdout).toBe(
      "agent/cli-habits-a1\n",
    );
    const wide = (await runCapa(["jobs", "-o", "wide"], { env })).stdout.split("\n")[0]!;
    expect(wide.split(/\s+/)).toEqual(expect.arrayContaining(["TENANT", "MODELS", "REASON"]));
    const narrow = (await runCapa(["jobs"], { env })).stdout.split("\n")[0]!;
    expect(narrow).not.toContain("TENANT");
    const offers = parseYaml((await runCapa(["offers", "-o", "yaml"], { env })).stdout) as { offers: unknown[] };
    expect(offers.offers.length).toBeGreaterThan(0);
  });

  it("fits tables to $COLUMNS and leaves piped output uncut", async () => {
    const uncut = (await runCapa(["jobs", "-o", "wide"], { env })).stdout.split("\n").filter(Boolean);
    expect(Math.max(...uncut.map((l) => l.length))).toBeGreaterThan(100);
    const fitted = (await runCapa(["jobs", "-o", "wide"], { env: { ...env, COLUMNS: "100" } })).stdout
      .split("\n")
      .filter(Boolean);
    for (const line of fitted) expect(line.length).toBeLessThanOrEqual(100);
    expect(fitted.join("\n")).toContain("…");
  });

  /**
   * `capa ARGS` on a pseudo-terminal (util-linux `script`), as a person at a terminal runs it. Asynchronous: the
   * scheduler runs in this process and must keep answering.
   */
  function onTerminal(args: string[], extraEnv: NodeJS.ProcessEnv): Promise<string> {
    const command = [process.execPath, CAPA_BIN, ...args].map((a) => `'${a}'`).join(" ");
    return new Promise((resolve, reject) => {
      const child = spawn("script", ["-qec", command, "/dev/null"], {
        env: { ...process.env, ...env, TERM: "xterm", ...extraEnv },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let out = "";
      child.stdout.on("data", (d: Buffer) => {
        out += d.toString();
      });
      child.on("error", reject);
      child.on("close", () => resolve(out));
    });
  }

  it("colours states only on a terminal, and never with NO_COLOR", async () => {
    expect((await runCapa(["jobs"], { env })).stdout).not.toContain(ESC);
    const tty = await onTerminal(["jobs"], {});
    expect(tty).toContain("SUCCEEDED");
    expect(tty).toContain(ESC);
    const noColour = await onTerminal(["jobs"], { NO_COLOR: "1" });
    expect(noColour).toContain("SUCCEEDED");
    expect(noColour).not.toContain(ESC);
  });

  it("capa version prints the client's and the scheduler's version", async () => {
    const r = await runCapa(["version"], { env });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`client:  0.1.0 (capa.v1)\nserver:  0.1.0 (capa.v1) at ${h.scheduler.grpcAddress}\n`);
    const doc = JSON.parse((await runCapa(["version", "--json"], { env })).stdout) as { server: { version: string } };
    expect(doc.server.version).toBe("0.1.0");
  });

  it("capa logs of a job that failed to start marks capa's own line once", async () => {
    const submitted = await runCapa(["submit", "--json", "--gpus", "1", "--", "/nonexistent/capa-no-such-program"], {
      env,
    });
    const id = (JSON.parse(submitted.stdout) as { job: { id: string } }).job.id;
    await waitFor(
      async () => {
        const s = JSON.parse((await runCapa(["status", id, "--json"], { env })).stdout) as { state: string };
        return s.state === "failed";
      },
      { what: "the job that cannot start failed" },
    );
    const logs = await runCapa(["logs", id], { env });
    expect(logs.stderr).toContain("[capa] cannot start /nonexistent/capa-no-such-program");
    expect(logs.stderr).not.toContain("[capa] [capa]");
  });
});
