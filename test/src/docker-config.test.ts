/**
 * No container engine runs in CI, so the Docker and Kubernetes files are checked for what can rot silently:
 * every `capa` command line they contain names a real verb and real flags of the built CLI, every path they
 * run exists, the NATS configs are exactly what @capa/topology renders (and nats-server accepts them), the
 * compose file passes `docker-compose config`, every Kubernetes object validates against the Kubernetes schemas
 * (kubernetes-models), and the shapes the README promises are there: 2 regions x 3 NATS with gateways, JetStream
 * R3 on volumes in the home region only, 2 schedulers with gRPC-health probes and a PodDisruptionBudget, agents
 * per region requesting nvidia.com/gpu, metrics on and scraped.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import {
  allServers,
  composeNatsService,
  composeTopology,
  DEPLOY_SERVERS_PER_REGION,
  DEPLOY_STORE_DIR,
  kubernetesNatsPod,
  kubernetesTopology,
  regionUrls,
} from "@capa/topology";
import { DaemonSet } from "kubernetes-models/apps/v1/DaemonSet";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { StatefulSet } from "kubernetes-models/apps/v1/StatefulSet";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Namespace } from "kubernetes-models/v1/Namespace";
import { Service } from "kubernetes-models/v1/Service";
import { beforeAll, describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { assertCliBuilt, REPO_ROOT, runCapa } from "./cli-harness.js";
import { deployFiles } from "./deploy-files.js";

const DOCKER = join(REPO_ROOT, "docker");
const hasDockerCompose = spawnSync("docker-compose", ["version"], { stdio: "ignore" }).status === 0;
const natsServerBinary = () => process.env.CAPA_NATS_SERVER ?? "nats-server";
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
  // Compose files use YAML merge keys (`<<: *anchor`) for shared service settings.
  return parse(readFileSync(path, "utf8"), { merge: true }) as T;
}

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  volumes?: string[];
  ports?: string[];
  healthcheck?: { test: string[] };
  depends_on?: string[] | Record<string, { condition: string }>;
}

const argOf = (command: string[] | undefined, flag: string) => command?.[command.indexOf(flag) + 1];

describe("docker/compose.yaml: 2 regions x 3 NATS with gateways, 2 schedulers, agents per region", () => {
  beforeAll(() => assertCliBuilt());
  const compose = readYaml<{ services: Record<string, ComposeService>; volumes?: Record<string, unknown> }>(
    join(DOCKER, "compose.yaml"),
  );
  const services = Object.entries(compose.services);
  const topology = composeTopology();
  const capaServices = services.filter(([, s]) => s.build);
  const schedulers = capaServices.filter(([, s]) => s.command?.[0] === "scheduler");
  const agents = capaServices.filter(([, s]) => s.command?.[0] === "agent" && s.command[1] !== "enroll");

  it("has one NATS service per server of the topology, each with its rendered config, JetStream on volumes at home", () => {
    const natsServices = services.filter(([, s]) => s.image?.startsWith("nats:"));
    expect(natsServices.map(([n]) => n).sort()).toEqual(
      allServers(topology)
        .map((server) => composeNatsService(server.name))
        .sort(),
    );
    for (const server of allServers(topology)) {
      const service = compose.services[composeNatsService(server.name)]!;
      const conf = argOf(service.command, "-c")!;
      const mounted = service.volumes?.find((v) => v.split(":")[1] === conf)?.split(":")[0];
      expect(mounted, server.name).toBe(`./nats/${server.name}.conf`);
      expect(service.volumes?.find((v) => v.split(":")[1] === "/etc/nats/auth")?.split(":")[0]).toBe("nats-auth");
      const store = service.volumes?.find((v) => v.split(":")[1] === dirname(DEPLOY_STORE_DIR));
      if (server.region === topology.home) {
        expect(store, `${server.name} keeps its JetStream store on a named volume`).toBeDefined();
        expect(Object.keys(compose.volumes ?? {})).toContain(store!.split(":")[0]);
      } else expect(store, `${server.name} runs no JetStream`).toBeUndefined();
      // Health from nats-server itself (JetStream current), not a port probe.
      expect(service.healthcheck?.test.join(" ")).toContain("/healthz");
    }
  });

  it("checks in exactly the configs @capa/topology renders (npm run render:deploy), and nats-server accepts each", () => {
    const files = deployFiles();
    const dir = mkdtempSync(join(tmpdir(), "capa-nats-conf-"));
    try {
      mkdirSync(join(dir, "auth"));
      writeFileSync(join(dir, "auth", "auth.conf"), 'authorization { users: [ { user: "x", password: "y" } ] }\n');
      for (const [path, text] of files) {
        expect(readFileSync(join(REPO_ROOT, path), "utf8"), `${path} is stale: npm run render:deploy`).toBe(text);
        if (!path.endsWith(".conf")) continue;
        const conf = join(dir, path.split("/").pop()!);
        writeFileSync(conf, text);
        const checked = spawnSync(natsServerBinary(), ["-t", "-c", conf], { encoding: "utf8" });
        expect(checked.status, `nats-server -t ${path}: ${checked.stderr}${checked.stdout}`).toBe(0);
        // Every gateway of the config names the other region's three servers.
        const gateways = [...text.matchAll(/\{ name: "([^"]+)", urls: \[([^\]]*)\] \}/g)];
        expect(gateways).toHaveLength(topology.regions.length - 1);
        for (const g of gateways) expect(g[2]!.split(",")).toHaveLength(DEPLOY_SERVERS_PER_REGION);
      }
      const text = readFileSync(join(DOCKER, "nats", `${topology.home}-1.conf`), "utf8");
      expect(text).toMatch(/^jetstream \{/m);
      expect(text).toMatch(/^include "auth\/auth.conf"$/m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("runs 2 scheduler replicas on the home cluster with R3, metrics on and a gRPC-health healthcheck", async () => {
    expect(schedulers).toHaveLength(2);
    const home = regionUrls(topology, topology.home).join(",");
    for (const [name, s] of schedulers) {
      expect(argOf(s.command, "--nats-url"), name).toBe(home);
      expect(argOf(s.command, "--js-replicas"), name).toBe("3");
      expect(argOf(s.command, "--metrics-port"), name).toBe("9464");
      expect(argOf(s.command, "--metrics-host"), name).toBe("0.0.0.0");
      expect(argOf(s.command, "--advertise-address"), name).toBe(`${name}:50051`);
      const test = s.healthcheck?.test ?? [];
      expect(test[0]).toBe("CMD");
      expect(test[2]).toBe(CLI_IN_IMAGE);
      expect(test[3], `${name} is checked through the gRPC health service`).toBe("health");
      await expectRealCommandLine(test.slice(3), `${name} healthcheck`);
    }
    // Both replicas share one data volume: one receipt signing key, one bootstrap admin key.
    const dataVolumes = schedulers.map(([, s]) => s.volumes?.find((v) => v.endsWith(":/var/lib/capa")));
    expect(new Set(dataVolumes).size).toBe(1);
  });

  it("runs an agent in every region on its own region's servers, with metrics on, all with real CLI flags", async () => {
    const regions = agents.map(([, s]) => argOf(s.command, "--region")!);
    expect(regions.sort()).toEqual(topology.regions.map((r) => r.name).sort());
    for (const [name, s] of agents) {
      expect(s.command).toContain("--simulate-gpus");
      expect(argOf(s.command, "--nats-url"), name).toBe(regionUrls(topology, argOf(s.command, "--region")!).join(","));
      expect(argOf(s.command, "--metrics-port"), name).toBe("9465");
    }
    for (const [name, service] of capaServices) {
      expect(existsSync(join(DOCKER, service.build!.context, service.build!.dockerfile)), name).toBe(true);
      await expectRealCommandLine(service.command!, `compose service ${name}`);
    }
  });

  it("scrapes every scheduler and agent with Prometheus and provisions the capa dashboard in Grafana", () => {
    const prometheus = readYaml<{ scrape_configs: { static_configs: { targets: string[] }[] }[] }>(
      join(DOCKER, "prometheus", "prometheus.yml"),
    );
    const targets = prometheus.scrape_configs.flatMap((c) => c.static_configs.flatMap((sc) => sc.targets)).sort();
    const expected = [
      ...schedulers.map(([n, s]) => `${n}:${argOf(s.command, "--metrics-port")}`),
      ...agents.map(([n, s]) => `${n}:${argOf(s.command, "--metrics-port")}`),
    ].sort();
    expect(targets).toEqual(expected);
    const grafana = compose.services.grafana!;
    expect(grafana.volumes?.some((v) => v.startsWith("./grafana/capa-dashboard.json:"))).toBe(true);
    for (const v of [...grafana.volumes!, ...compose.services.prometheus!.volumes!])
      if (v.startsWith("./")) expect(existsSync(join(DOCKER, v.split(":")[0]!)), v).toBe(true);
  });

  it.runIf(hasDockerCompose)("is valid for Compose itself (docker-compose config)", () => {
    const result = spawnSync("docker-compose", ["-p", "capa", "-f", join(DOCKER, "compose.yaml"), "config", "-q"], {
      encoding: "utf8",
    });
    expect(result.status, result.stderr).toBe(0);
  });
});

describe("docker/compose.yaml NATS authorization", () => {
  beforeAll(() => assertCliBuilt());
  const compose = readYaml<{ services: Record<string, ComposeService> }>(join(DOCKER, "compose.yaml"));
  const services = Object.entries(compose.services);
  const volumeAt = (s: ComposeService, path: string) => s.volumes?.find((v) => v.split(":")[1] === path)?.split(":")[0];

  it("enrolls every agent before any nats-server starts, and every nats-server includes the generated auth.conf", () => {
    const enrolls = services.filter(([, s]) => s.command?.[0] === "agent" && s.command[1] === "enroll");
    const agents = services.filter(([, s]) => s.command?.[0] === "agent" && s.command[1] !== "enroll");
    const idOf = (s: ComposeService) => argOf(s.command, "--id");
    expect(enrolls.map(([, s]) => idOf(s)).sort()).toEqual(agents.map(([, s]) => idOf(s)).sort());
    for (const [, s] of enrolls) expect(s.command).toContain("--keep-existing");
    const enrollDir = argOf(enrolls[0]![1].command, "--auth-dir")!;
    for (const [name, nats] of services.filter(([, s]) => s.image?.startsWith("nats:"))) {
      expect(volumeAt(nats, "/etc/nats/auth"), name).toBeDefined();
      for (const [, s] of enrolls) expect(volumeAt(s, enrollDir)).toBe(volumeAt(nats, "/etc/nats/auth"));
      expect(Object.keys((nats.depends_on ?? {}) as Record<string, unknown>), name).toContain("enroll-us-east");
    }
  });

  it("starts every scheduler and agent with its own nkey seed from the auth volume", () => {
    for (const [name, s] of services.filter(([, s]) => ["scheduler", "agent"].includes(s.command?.[0] ?? ""))) {
      if (s.command![1] === "enroll") continue;
      const seed = argOf(s.command, "--nats-nkey") ?? "";
      expect(volumeAt(s, "/nats-auth"), name).toBe("nats-auth");
      const expected =
        s.command![0] === "scheduler" ? "/nats-auth/scheduler.nk" : `/nats-auth/agents/${argOf(s.command, "--id")}.nk`;
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
  volumeMounts?: { name: string; mountPath: string; subPathExpr?: string }[];
  resources?: { requests?: Record<string, string | number>; limits?: Record<string, string | number> };
  readinessProbe?: { grpc?: { port: number; service?: string }; httpGet?: { path: string } };
  livenessProbe?: { grpc?: { port: number; service?: string }; httpGet?: { path: string } };
}
interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  data?: Record<string, string>;
  spec?: {
    replicas?: number;
    serviceName?: string;
    minAvailable?: number;
    maxUnavailable?: number;
    selector?: { matchLabels?: Record<string, string> };
    volumeClaimTemplates?: { metadata: { name: string } }[];
    template?: {
      metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
      spec: { containers: K8sContainer[]; runtimeClassName?: string; volumes?: { name: string; secret?: unknown }[] };
    };
  };
}

/** The Kubernetes schema of every kind the manifests use (kubernetes-models: the API's OpenAPI schemas). */
const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  "v1/Namespace": Namespace,
  "v1/ConfigMap": ConfigMap,
  "v1/Service": Service,
  "apps/v1/StatefulSet": StatefulSet,
  "apps/v1/Deployment": Deployment,
  "apps/v1/DaemonSet": DaemonSet,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
};

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
  const topology = kubernetesTopology();
  const [scheduler] = byKind("Deployment");

  it("validates every object against the Kubernetes schemas", () => {
    expect(objects.length).toBeGreaterThan(10);
    for (const o of objects) {
      const Model = MODELS[`${o.apiVersion}/${o.kind}`];
      expect(Model, `${o.apiVersion} ${o.kind} ${o.metadata.name} has a schema here`).toBeDefined();
      expect(() => new Model!(o as never).validate(), `${o.kind} ${o.metadata.name}`).not.toThrow();
    }
    // The validator is not lenient: a wrong type is refused.
    const broken = structuredClone(scheduler!) as unknown as { spec: { replicas: unknown } };
    broken.spec.replicas = "two";
    expect(() => new Deployment(broken as never).validate()).toThrow(/replicas/);
    expect(objects.filter((o) => o.kind !== "Namespace").every((o) => o.metadata.namespace === "capa")).toBe(true);
    expect(byKind("Namespace").map((o) => o.metadata.name)).toEqual(["capa"]);
  });

  it("runs one 3-server NATS StatefulSet per region as the topology says, JetStream PVCs in the home region only", () => {
    const sets = byKind("StatefulSet");
    expect(sets.map((o) => o.metadata.name).sort()).toEqual(topology.regions.map((r) => `nats-${r.name}`).sort());
    const configMap = objects.find((o) => o.kind === "ConfigMap" && o.metadata.name === "nats-config")!;
    for (const region of topology.regions) {
      const set = sets.find((o) => o.metadata.name === `nats-${region.name}`)!;
      expect(set.spec?.replicas).toBe(DEPLOY_SERVERS_PER_REGION);
      expect(set.spec?.serviceName).toBe(`nats-${region.name}`);
      const headless = byKind("Service").find((o) => o.metadata.name === `nats-${region.name}`) as unknown as {
        spec: { clusterIP: string };
      };
      expect(headless?.spec.clusterIP).toBe("None");
      const pod = set.spec!.template!.spec;
      const container = pod.containers[0]!;
      expect(container.image).toBe("nats:2.10");
      const conf = container.args![container.args!.indexOf("-c") + 1]!;
      const mount = container.volumeMounts!.find((m) => m.mountPath === conf)!;
      expect(mount.subPathExpr).toBe("$(POD_NAME).conf");
      expect(container.volumeMounts?.map((m) => m.mountPath)).toContain("/etc/nats/auth");
      expect(
        (pod.volumes?.find((v) => v.name === "auth") as { secret?: { secretName: string } }).secret?.secretName,
      ).toBe("capa-nats-auth");
      // Each pod's config is in the ConfigMap under its pod name, and names that pod's own server.
      region.servers.forEach((server, i) => {
        const text = configMap.data![`${kubernetesNatsPod(region.name, i)}.conf`];
        expect(text, kubernetesNatsPod(region.name, i)).toContain(`server_name: "${server.name}"`);
        expect(text).toMatch(/^include "auth\/auth.conf"$/m);
      });
      const home = region.name === topology.home;
      expect(set.spec?.volumeClaimTemplates?.map((t) => t.metadata.name) ?? [], region.name).toEqual(
        home ? ["data"] : [],
      );
      if (home)
        expect(container.volumeMounts?.find((m) => m.name === "data")?.mountPath).toBe(dirname(DEPLOY_STORE_DIR));
      expect(container.readinessProbe?.httpGet?.path).toBe("/healthz");
      expect(container.resources?.requests).toBeDefined();
      const pdb = byKind("PodDisruptionBudget").find((o) => o.metadata.name === `nats-${region.name}`);
      expect(pdb?.spec?.maxUnavailable).toBe(1);
      expect(pdb?.spec?.selector?.matchLabels).toEqual(set.spec?.selector?.matchLabels);
    }
  });

  it("runs 2 scheduler replicas with resources, native gRPC probes, a PodDisruptionBudget and scrape annotations", () => {
    expect(byKind("Deployment")).toHaveLength(1);
    expect(scheduler?.spec?.replicas).toBe(2);
    const pod = scheduler!.spec!.template!;
    const container = pod.spec.containers[0]!;
    expect(container.resources?.requests?.cpu).toBeDefined();
    expect(container.resources?.limits?.memory).toBeDefined();
    expect(container.readinessProbe?.grpc?.port).toBe(50051);
    expect(container.livenessProbe?.grpc?.port).toBe(50051);
    const args = container.args ?? [];
    expect(args[args.indexOf("--nats-url") + 1]).toBe(regionUrls(topology, topology.home).join(","));
    expect(args[args.indexOf("--js-replicas") + 1]).toBe("3");
    expect(pod.metadata?.annotations?.["prometheus.io/scrape"]).toBe("true");
    expect(pod.metadata?.annotations?.["prometheus.io/port"]).toBe(args[args.indexOf("--metrics-port") + 1]);
    expect(args[args.indexOf("--metrics-host") + 1]).toBe("0.0.0.0");
    const pdb = byKind("PodDisruptionBudget").find((o) => o.metadata.name === "capa-scheduler");
    expect(pdb?.spec?.minAvailable).toBe(1);
    expect(pdb?.spec?.selector?.matchLabels).toEqual(scheduler?.spec?.selector?.matchLabels);
  });

  it("runs an agent DaemonSet per region that requests nvidia.com/gpu, on its region's NATS, scraped", () => {
    const daemonSets = byKind("DaemonSet");
    expect(daemonSets).toHaveLength(topology.regions.length);
    for (const ds of daemonSets) {
      const pod = ds.spec!.template!;
      const container = pod.spec.containers[0]!;
      const args = container.args ?? [];
      const region = args[args.indexOf("--region") + 1]!;
      expect(args[args.indexOf("--nats-url") + 1], ds.metadata.name).toBe(regionUrls(topology, region).join(","));
      expect(Number(container.resources?.limits?.["nvidia.com/gpu"])).toBeGreaterThan(0);
      expect(container.resources?.requests?.["nvidia.com/gpu"]).toBe(container.resources?.limits?.["nvidia.com/gpu"]);
      expect(pod.spec.runtimeClassName).toBe("nvidia");
      expect(pod.metadata?.annotations?.["prometheus.io/port"]).toBe(args[args.indexOf("--metrics-port") + 1]);
    }
  });

  it("gives every scheduler replica the same receipt signing key, from a Secret", () => {
    // Receipts signed by one replica must verify with the key the others publish.
    const pod = scheduler!.spec!.template!.spec;
    const container = pod.containers[0]!;
    const args = container.args ?? [];
    const keyPath = args[args.indexOf("--receipt-key") + 1] ?? "";
    const mount = container.volumeMounts?.find((m) => keyPath.startsWith(`${m.mountPath}/`));
    expect(mount, `--receipt-key ${keyPath} must be inside a mounted volume`).toBeDefined();
    expect(pod.volumes?.find((v) => v.name === mount!.name)?.secret).toBeDefined();
  });

  it("gives the scheduler and agents their own nkey seeds", () => {
    for (const o of [...byKind("Deployment"), ...byKind("DaemonSet")]) {
      const pod = o.spec!.template!.spec;
      const container = pod.containers[0]!;
      const args = container.args ?? [];
      const seed = args[args.indexOf("--nats-nkey") + 1] ?? "";
      const mount = container.volumeMounts?.find((m) => seed === m.mountPath || seed.startsWith(`${m.mountPath}/`));
      expect(mount, `${o.metadata.name}: --nats-nkey ${seed} must be a mounted secret or node file`).toBeDefined();
      const volume = pod.volumes?.find((v) => v.name === mount!.name) as { secret?: unknown; hostPath?: unknown };
      expect(volume?.secret ?? volume?.hostPath, o.metadata.name).toBeDefined();
    }
  });

  it("runs capa containers with real verbs and flags", async () => {
    const containers = objects
      .flatMap((o) => o.spec?.template?.spec.containers ?? [])
      .filter((c) => c.image.startsWith("capa/"));
    expect(containers.length).toBe(1 + topology.regions.length);
    for (const container of containers) {
      await expectRealCommandLine(container.args ?? [], `k8s ${container.image}`);
    }
  });
});
