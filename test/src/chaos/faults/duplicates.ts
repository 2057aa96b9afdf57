/**
 * `count` concurrent SubmitJob calls with one request id, spread over every scheduler replica (followers forward
 * to the leader): they must all answer the same job, and the tenant must hold exactly one job afterwards.
 */
import { SchedulerClient } from "@capa/cli";
import { type Figure, none } from "../report.js";
import { type ChaosStack, HA_RETRY } from "../stack.js";
import { markedSpec } from "../workload.js";

const TENANT = "chaos-dup";

export async function duplicateSubmits(
  stack: ChaosStack,
  count: number,
  log: (line: string) => void,
): Promise<Figure[]> {
  const FAULT = `Duplicate submits, same request id ×${count} concurrent`;
  const clients = stack.addresses.map(
    (address) => new SchedulerClient({ address, tenant: "", token: stack.adminToken }, HA_RETRY),
  );
  try {
    const requestId = `dup-${Date.now()}`;
    const answers = await Promise.allSettled(
      Array.from({ length: count }, (_, i) =>
        clients[i % clients.length]!.submitJob({ requestId, tenant: TENANT, spec: markedSpec(stack.marks, 0) }),
      ),
    );
    const ids = new Set<string>();
    let failed = 0;
    let fresh = 0;
    for (const a of answers) {
      if (a.status === "rejected") failed++;
      else {
        ids.add(a.value.job!.id);
        if (!a.value.deduplicated) fresh++;
      }
    }
    const listed = await clients[0]!.listJobs({ tenant: TENANT, states: [], limit: 1000, pageToken: "" });
    const duplicates = Math.max(0, ids.size - 1) + Math.max(0, listed.jobs.length - 1) + Math.max(0, fresh - 1);
    log(
      `  ${count} submits: ${ids.size} distinct job id(s), ${fresh} answered as new, ${failed} failed, ${listed.jobs.length} job(s) stored for the tenant`,
    );
    return [none(FAULT, "duplicates", duplicates, `${failed} of ${count} calls failed`)];
  } finally {
    for (const c of clients) c.close();
  }
}
