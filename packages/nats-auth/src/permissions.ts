/**
 * What each NATS user may do, as nats-server permissions. The broker enforces them: capa never checks a
 * publisher's identity itself, it only relies on the subject (which these permissions bind to the user).
 *
 * An agent may publish its own subtree `capa.v1.agent.<region>.<agentId>.>` (adverts, heartbeats, and its own
 * control subject, so a provider holding the agent's credentials can run `capa agent price set`), and task status,
 * usage and logs only on subjects ending in its own id. It reads its desired state, KV `capa_allocs/<agentId>`,
 * through two JetStream API subjects that carry the key in the subject (a direct get and a consumer create whose
 * subject names the filter; nats-server 2.9 refuses a create whose body filters anything else), so it can never
 * read another agent's assignments (which hold tenants' commands and secrets). It subscribes only to its inbox
 * (`_INBOX_<agentId>.>`: replies and watch deliveries) and its control subject. Everything else is denied: other
 * agents' subjects, every other KV bucket and stream, the JetStream API beyond those two calls, the ledger.
 *
 * Checkpoint copies (the JetStream Object Store `capa_checkpoints`) are not opened to agents at all: an object
 * store cannot be scoped per object (chunks live on `$O.<bucket>.C.<nuid>`, reads need STREAM.MSG.GET or consumers
 * no filter ties to an object). An agent asks the scheduler instead, on `capa.v1.agent.<region>.<agentId>.
 * checkpoint.put|get` inside its own subtree (so the subject proves the sender), and the scheduler's broker reads
 * or writes only objects of tasks that agent holds (scheduler/src/checkpoints/broker.ts). No extra permission.
 *
 * The scheduler has no permissions block: full access, and it is the only user that has it.
 */
import { assertToken, BUCKETS, inboxPrefixFor, kvKeySubject, kvStreamName, SUBJECT_ROOT, subjects } from "@capa/bus";

export interface AgentIdentity {
  agentId: string;
  region: string;
}

export interface Permissions {
  publish: { allow: string[] };
  subscribe: { allow: string[] };
  /** The user may answer requests it received (one reply each), the price-control request-reply. */
  allow_responses: boolean;
}

export function agentPermissions({ agentId, region }: AgentIdentity): Permissions {
  assertToken(agentId, "agent id");
  const own = subjects.agentRoot(region, agentId);
  const allocs = kvStreamName(BUCKETS.allocs);
  const ownKey = kvKeySubject(BUCKETS.allocs, agentId);
  return {
    publish: {
      allow: [
        `${own}.>`,
        `${SUBJECT_ROOT}.task.*.status.${agentId}`,
        `${SUBJECT_ROOT}.task.*.usage.${agentId}`,
        `${SUBJECT_ROOT}.task.*.logs.${agentId}`,
        `${SUBJECT_ROOT}.task.*.ready.${agentId}`,
        `$JS.API.DIRECT.GET.${allocs}.${ownKey}`,
        `$JS.API.CONSUMER.CREATE.${allocs}.*.${ownKey}`,
        // Flow-control replies of its own watch (the watch is a push consumer with flow control).
        `$JS.FC.${allocs}.>`,
      ],
    },
    subscribe: { allow: [`${inboxPrefixFor(agentId)}.>`, `${own}.control.>`] },
    allow_responses: true,
  };
}
