/**
 * No container engine runs in CI, so the Docker and Kubernetes files are checked for what can rot silently:
 * every `capa` command line they contain names a real verb and real flags of the built CLI, every path they
 * run exists, and the shapes the README promises (JetStream volume, two regions, 2 scheduler replicas, GPU
 * DaemonSet) are there.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { assertCliBuilt, REPO_ROOT, runCapa } from "./cli-harness.js";

const DOCKER = join(REPO_ROOT, "docker");
const CLI_IN_IMAGE = "/app/packages/cli/bin/capa.js";

const helpCache = new Map<string, string>();
async function helpOf(verb: string): Promise<string> {
  let help = helpCache.get(verb);
  if (help === undefined) {
    const result = await runCapa([verb, "--help"]);
    expect(result.code, `capa ${verb} --help: ${result.stderr}`).toBe(0);
    help = result.stdout;
    helpCache.set(verb, help);
  }
  return help;
}

/** Asserts that `argv` (after the program) is a real verb with real flags of the built CLI. */
async function expectRealCommandLine(argv: string[], where: string): Promise<void> {
  const [verb, ...rest] = argv;
  expect(verb, `${where}: no verb`).toBeDefined();
  const help = await helpOf(verb!);
  for (const flag of rest.filter((arg) => arg.startsWith("--"))) {
    expect(help, `${where}: capa ${verb} has no ${flag}`).toMatch(new RegExp(`(^|[\\s,])${flag}(\\s|$)`, "m"));
  }
}

function readYaml<T>(path: string): T {
  return parse(readFileSync(path, "utf8")) as T;
}

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  volumes?: string[];
}

describe("docker/compose.yaml", () => {
  beforeAll(() => assertCliBuilt());
  const compose = readYaml<{ services: Record<string, ComposeService>; volumes?: Record<string, unknown> }>(
    join(DOCKER, "compose.yaml"),
  );

  it("runs NATS with JetStream on a named volume", () => {
    const nats = compose.services.nats!;
    expect(nats.command).toContain("-js");
    const storeDir = nats.command![nats.command!.indexOf("-sd") + 1];
    const volume = nats.volumes?.find((v) => v.endsWith(`:${storeDir}`));
    expect(volume, "the JetStream store dir is on a volume").toBeDefined();
    expect(Object.keys(compose.volumes ?? {})).toContain(volume!.split(":")[0]);
  });

  it("runs one scheduler and simulated agents in two regions, all with real CLI flags", async () => {
    const capaServices = Object.entries(compose.services).filter(([, s]) => s.build);
    const verbs = capaServices.map(([, s]) => s.command?.[0]);
    expect(verbs.filter((v) => v === "scheduler")).toHaveLength(1);
    const agents = capaServices.filter(([, s]) => s.command?.[0] === "agent");
    const regions = agents.map(([, s]) => s.command![s.command!.indexOf("--region") + 1]);
    expect(new Set(regions).size).toBeGreaterThanOrEqual(2);
    for (const [name, service] of capaServices) {
      expect(existsSync(join(DOCKER, service.build!.context, service.build!.dockerfile)), name).toBe(true);
      if (service.command?.[0] === "agent") expect(service.command).toContain("--simulate-gpus");
      if (service.command?.includes("--nats-url")) {
        expect(service.command[service.command.indexOf("--nats-url") + 1]).toBe("nats://nats:4222");
      }
      await expectRealCommandLine(service.command!, `compose service ${name}`);
    }
  });
});

/** The JSON-array form of an instruction (`CMD ["a", "b"]`); the shell form would hide signals from node. */
function instruction(dockerfile: string, name: "ENTRYPOINT" | "CMD"): string[] {
  const lines = dockerfile.split("\n").filter((l) => l.startsWith(`${name} `));
  expect(lines, `exactly one ${name}`).toHaveLength(1);
  return JSON.parse(lines[0]!.slice(name.length + 1)) as string[];
}

describe.each(["scheduler", "agent"])("docker/%s.Dockerfile", (service) => {
  beforeAll(() => assertCliBuilt());
  const path = join(DOCKER, `${service}.Dockerfile`);
  const dockerfile = readFileSync(path, "utf8");

  it("builds on node:20-bookworm-slim in two stages, the runtime with production dependencies only", () => {
    const froms = dockerfile.split("\n").filter((l) => l.startsWith("FROM "));
    expect(froms.length).toBe(2);
    expect(froms.every((l) => l.startsWith("FROM node:20-bookworm-slim"))).toBe(true);
    const runtime = dockerfile.slice(dockerfile.lastIndexOf("\nFROM "));
    expect(runtime).toMatch(/npm ci --omit=dev/);
    expect(dockerfile).toMatch(/COPY --from=build/);
    for (const script of dockerfile.matchAll(/sh (docker\/[\w.-]+\.sh)/g)) {
      expect(existsSync(join(REPO_ROOT, script[1]!)), script[1]).toBe(true);
    }
    const ignore = readFileSync(`${path}.dockerignore`, "utf8");
    expect(ignore).toMatch(/node_modules/);
    expect(ignore).toMatch(/dist/);
  });

  it(`starts the capa CLI with a real verb and flags`, async () => {
    const entrypoint = instruction(dockerfile, "ENTRYPOINT");
    expect(entrypoint).toContain(CLI_IN_IMAGE);
    expect(existsSync(join(REPO_ROOT, CLI_IN_IMAGE.replace("/app/", "")))).toBe(true);
    const cmd = instruction(dockerfile, "CMD");
    expect(cmd[0]).toBe(service);
    await expectRealCommandLine(cmd, `${service}.Dockerfile CMD`);
  });
});

interface K8sContainer {
  image: string;
  args?: string[];
  volumeMounts?: { name: string; mountPath: string }[];
}
interface K8sObject {
  kind: string;
  metadata: { name: string; namespace?: string };
  spec?: {
    replicas?: number;
    template?: {
      spec: { containers: K8sContainer[]; runtimeClassName?: string; volumes?: { name: string; secret?: unknown }[] };
    };
  };
}

describe("docker/k8s manifests", () => {
  beforeAll(() => assertCliBuilt());
  const objects: K8sObject[] = readdirSync(join(DOCKER, "k8s"))
    .filter((f) => f.endsWith(".yaml"))
    .flatMap((f) =>
      parseAllDocuments(readFileSync(join(DOCKER, "k8s", f), "utf8")).map((doc) => {
        expect(doc.errors, f).toEqual([]);
        return doc.toJS() as K8sObject;
      }),
    );
  const byKind = (kind: string) => objects.filter((o) => o.kind === kind);

  it("has NATS as a StatefulSet, the scheduler as a 2-replica Deployment and the agent as a GPU DaemonSet", () => {
    expect(byKind("Namespace").map((o) => o.metadata.name)).toEqual(["capa"]);
    expect(byKind("StatefulSet").map((o) => o.spec?.template?.spec.containers[0]?.image)).toEqual(["nats:2.10"]);
    const [scheduler] = byKind("Deployment");
    expect(scheduler?.spec?.replicas).toBe(2);
    const [agent] = byKind("DaemonSet");
    expect(agent?.spec?.template?.spec.runtimeClassName).toBe("nvidia");
    expect(objects.filter((o) => o.kind !== "Namespace").every((o) => o.metadata.namespace === "capa")).toBe(true);
  });

  it("gives every scheduler replica the same receipt signing key, from a Secret", () => {
    // Receipts signed by one replica must verify with the key the others publish.
    const [scheduler] = byKind("Deployment");
    const pod = scheduler!.spec!.template!.spec;
    const container = pod.containers[0]!;
    const args = container.args ?? [];
    const keyPath = args[args.indexOf("--receipt-key") + 1] ?? "";
    const mount = container.volumeMounts?.find((m) => keyPath.startsWith(`${m.mountPath}/`));
    expect(mount, `--receipt-key ${keyPath} must be inside a mounted volume`).toBeDefined();
    expect(pod.volumes?.find((v) => v.name === mount!.name)?.secret).toBeDefined();
  });

  it("runs capa containers with real verbs and flags", async () => {
    const containers = objects
      .flatMap((o) => o.spec?.template?.spec.containers ?? [])
      .filter((c) => c.image.startsWith("capa/"));
    expect(containers.length).toBe(2);
    for (const container of containers) {
      await expectRealCommandLine(container.args ?? [], `k8s ${container.image}`);
    }
  });
});
