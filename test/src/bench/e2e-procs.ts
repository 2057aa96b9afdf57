/**
 * Child-process entries of `npm run bench:e2e`, so the scheduler and the agents each run in their own process and
 * their CPU and memory can be read from /proc apart from the load generator's:
 *   node e2e-procs.js scheduler '{"natsUrl":…,"grpcAddress":…,"dataDir":…,"countNats":true}'
 *   node e2e-procs.js agents '{"natsUrl":…,"ids":["a1",…],"gpus":"8xH100-80GB","workRoot":…,"region":…}'
 *   node e2e-procs.js fleet '{"natsUrl":…,"count":10000,"prefix":…,"regions":[…],"heartbeatMs":…,…}' (fake agents)
 * An `agents` process runs one real agent per id (startAgent: its own NATS connection, supervisor, child
 * processes); with one id per process every agent is a process of its own. Each prints one JSON line when ready
 * and stops on SIGTERM or when its stdin (a pipe from the benchmark) closes, so none outlives the benchmark.
 */
import { join } from "node:path";
import { createInterface } from "node:readline";
import { startAgent } from "@capa/agent";
import { connectBus } from "@capa/bus";
import { startScheduler } from "@capa/scheduler";
import { pino } from "pino";
import { installNatsTap, natsCounts } from "./e2e-nats-tap.js";
import { FakeFleet } from "./fleet-gen.js";

const [role, raw] = process.argv.slice(2);
const args = JSON.parse(raw ?? "{}");
const logger = pino({ level: process.env.CAPA_BENCH_LOG ?? "warn" }, pino.destination(2));

async function main(): Promise<void> {
  const stops: (() => Promise<void>)[] = [];
  if (role === "scheduler") {
    const { countNats, ...config } = args;
    // Before the scheduler connects, so every message it sends is counted (e2e-nats-tap.ts).
    if (countNats) installNatsTap();
    const s = await startScheduler({ ...config, logger });
    stops.push(() => s.stop());
    console.log(JSON.stringify({ grpcAddress: s.grpcAddress }));
  } else if (role === "agents") {
    const ids: string[] = args.ids;
    const agents = await Promise.all(
      ids.map((id) =>
        startAgent({
          nats: args.natsUrl,
          agentId: id,
          region: args.region,
          simulateGpus: args.gpus,
          workDir: join(args.workRoot, id),
          prices: [{ gpuModel: "H100-80GB", onDemandPerHour: 2_000_000, interruptiblePerHour: 0 }],
          logger,
        }),
      ),
    );
    for (const a of agents) stops.push(() => a.stop());
    console.log(JSON.stringify({ agents: ids.length }));
  } else if (role === "fleet") {
    const nc = await connectBus({ servers: args.natsUrl, name: "bench-fake-fleet" });
    const fleet = new FakeFleet(nc, args);
    fleet.start();
    stops.push(async () => {
      fleet.stop();
      await nc.close();
    });
    console.log(JSON.stringify({ fakeAgents: args.count }));
  } else {
    throw new Error(`unknown role ${role}`);
  }
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await Promise.allSettled(stops.map((s) => s()));
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  // stdin is a pipe from the benchmark: when it closes (the benchmark ended, however), stop too.
  process.stdin.on("end", stop);
  // Questions from the benchmark, one a line, each answered with one JSON line: `nats` → the NATS counts so far.
  createInterface({ input: process.stdin }).on("line", (line) => {
    if (line.trim() === "nats") console.log(JSON.stringify(natsCounts()));
  });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
