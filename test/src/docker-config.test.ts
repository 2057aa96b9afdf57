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
async function helpOf(verbs: string[]): Promise<string> {
  const key = verbs.join(" ");
  let help = helpCache.get(key);
  if (help === undefined) {
    const result = await runCapa([...verbs, "--help"]);
    expect(result.code, `capa ${key} --help: ${result.stderr}`).toBe(0);
    help = result.stdout;
    helpCache.set(key, help);
  }
  return help;
}

/** Sub-verbs a command line may name after its verb (`capa agent enroll ...`). */
const SUB_VERBS: Record<string, string[]> = { agent: ["enroll", "revoke", "price"] };

/** Asserts that `argv` (after the program) is a real verb (and sub-verb) with real flags of the built CLI. */
async function expectRealCommandLine(argv: string[], where: string): Promise<void> {
  const [verb, ...rest] = argv;
  expect(verb, `${where}: no verb`).toBeDefined();
  const verbs = SUB_VERBS[verb!]?.includes(rest[0] ?? "") ? [verb!, rest.shift()!] : [verb!];
  // A sub-verb also takes its parent's options (commander hands them to the parent).
  const help = (await Promise.all(verbs.map((_, i) => helpOf(verbs.slice(0, i + 1))))).join("\n");
  for (const flag of rest.filter((arg) => arg.startsWith("--"))) {
    expect(help, `${where}: capa ${verbs.join(" ")} has no ${flag}`).toMatch(
      new RegExp(`(^|[\\s,])${flag}(\\s|$)`, "m"),
    );
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
  depends_on?: string[] | Record<string, { condition: string }>;
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
    const agents = capaServices.filter(([, s]) => s.command?.[0] === "agent" && s.command[1] !== "enroll");
    const regions = agents.map(([, s]) => s.command![s.command!.indexOf("--region") + 1]);
    expect(new Set(regions).size).toBeGreaterThanOrEqual(2);
    for (const [name, service] of capaServices) {
      expect(existsSync(join(DOCKER, service.build!.context, service.build!.dockerfile)), name).toBe(true);
      if (agents.some(([n]) => n === name)) expect(service.command).toContain("--simulate-gpus");
      if (service.command?.includes("--nats-url")) {
        expect(service.command[service.command.indexOf("--nats-url") + 1]).toBe("nats://nats:4222");
      }
      await expectRealCommandLine(service.command!, `compose service ${name}`);
    }
  });
});

describe("docker/compose.yaml NATS authorization", () => {
  beforeAll(() => assertCliBuilt());
  const compose = readYaml<{ services: Record<string, ComposeService> }>(join(DOCKER, "compose.yaml"));
  const services = Object.entries(compose.services);
  const volumeAt = (s: ComposeService, path: string) => s.volumes?.find((v) => v.split(":")[1] === path)?.split(":")[0];

  it("enrolls every agent before nats-server starts, and nats-server includes the generated auth.conf", () => {
    const enrolls = services.filter(([, s]) => s.command?.[0] === "agent" && s.command[1] === "enroll");
    const agents = services.filter(([, s]) => s.command?.[0] === "agent" && s.command[1] !== "enroll");
    const idOf = (s: ComposeService) => s.command![s.command!.indexOf("--id") + 1];
    expect(enrolls.map(([, s]) => idOf(s)).sort()).toEqual(agents.map(([, s]) => idOf(s)).sort());
    for (const [, s] of enrolls) expect(s.command).toContain("--keep-existing");
    const nats = compose.services.nats!;
    const conf = nats.command![nats.command!.indexOf("-c") + 1]!;
    const mounted = nats.volumes?.find((v) => v.split(":")[1] === conf)?.split(":")[0];
    expect(mounted, "the nats config is mounted").toBeDefined();
    const text = readFileSync(join(DOCKER, mounted!), "utf8");
    const include = /^include "([^"]+)"/m.exec(text)?.[1];
    expect(include).toBe("auth/auth.conf");
    const authDir = nats.volumes!.find((v) => v.split(":")[1] === "/etc/nats/auth")!.split(":")[0];
    const enrollDir = enrolls[0]![1].command![enrolls[0]![1].command!.indexOf("--auth-dir") + 1]!;
    for (const [, s] of enrolls) expect(volumeAt(s, enrollDir)).toBe(authDir);
    expect(Object.keys((nats.depends_on ?? {}) as Record<string, unknown>).length).toBeGreaterThan(0);
  });

  it("starts the scheduler and every agent with its own nkey seed from the auth volume", () => {
    for (const [name, s] of services.filter(([, s]) => ["scheduler", "agent"].includes(s.command?.[0] ?? ""))) {
      if (s.command![1] === "enroll") continue;
      const seed = s.command![s.command!.indexOf("--nats-nkey") + 1] ?? "";
      expect(seed, `${name} --nats-nkey`).toMatch(/^\/nats-auth\//);
      expect(volumeAt(s, "/nats-auth"), name).toBe("nats-auth");
      const expected =
        s.command![0] === "scheduler"
          ? "/nats-auth/scheduler.nk"
          : `/nats-auth/agents/${s.command![s.command!.indexOf("--id") + 1]}.nk`;
      expect(seed, name).toBe(expected);
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

  it("runs NATS with the generated auth.conf and gives the scheduler and agents their own nkey seeds", () => {
    const [nats] = byKind("StatefulSet");
    const natsPod = nats!.spec!.template!.spec;
    const natsContainer = natsPod.containers[0]!;
    expect(natsContainer.args).toContain("-c");
    expect(natsContainer.volumeMounts?.map((m) => m.mountPath)).toEqual(
      expect.arrayContaining(["/etc/nats/nats.conf", "/etc/nats/auth"]),
    );
    const configMap = objects.find((o) => o.kind === "ConfigMap") as unknown as { data: Record<string, string> };
    expect(configMap.data["nats.conf"]).toMatch(/^include "auth\/auth.conf"/m);
    const authVolume = natsPod.volumes?.find((v) => v.name === "auth") as { secret?: { secretName: string } };
    expect(authVolume?.secret?.secretName).toBe("capa-nats-auth");
    for (const kind of ["Deployment", "DaemonSet"]) {
      const pod = byKind(kind)[0]!.spec!.template!.spec;
      const container = pod.containers[0]!;
      const args = container.args ?? [];
      const seed = args[args.indexOf("--nats-nkey") + 1] ?? "";
      const mount = container.volumeMounts?.find((m) => seed === m.mountPath || seed.startsWith(`${m.mountPath}/`));
      expect(mount, `${kind}: --nats-nkey ${seed} must be a mounted secret or node file`).toBeDefined();
      const volume = pod.volumes?.find((v) => v.name === mount!.name) as { secret?: unknown; hostPath?: unknown };
      expect(volume?.secret ?? volume?.hostPath, kind).toBeDefined();
    }
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
