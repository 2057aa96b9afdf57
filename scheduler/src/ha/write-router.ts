/**
 * Scheduler HA, server side: every replica serves reads from its own KV-fed state; a call that changes state is
 * served by the leader only. A follower forwards it to the leader's address (from the lease record) with the
 * caller's credential, and answers the leader's answer. When it cannot (no live leader during a failover, the
 * leader unreachable, TLS without a client identity, or the call was already forwarded once), it answers
 * UNAVAILABLE naming the leader and its address, in the message and in the `capa-leader-address` trailer, so
 * HA clients (the CLI's address list, the SDKs) go there or retry with backoff.
 *
 * Why forward rather than only reject: a client that knows one replica (a single DNS name behind a load
 * balancer, a Python script) keeps working, and one writer means the leader's in-memory state (service load
 * reports, the planner's queue) sees every write first. Why one hop at most: a forwarded call that reaches a
 * replica that is no longer leader is rejected, not forwarded again, so a lease change never makes a loop.
 * A forwarded write is as safe to retry as a direct one: SubmitJob carries its request id, the rest are
 * level-set or CAS-guarded.
 */
import { type MethodRule, shortMethod } from "@capa/auth";
import { UnavailableError } from "@capa/domain";
import {
  type CallOptions,
  type ChannelCredentials,
  Client,
  credentials,
  Metadata,
  type MethodDefinition,
  type ServiceError,
  status,
} from "@grpc/grpc-js";

/** Set on a call a follower forwarded: the receiving replica must serve it itself or reject it. */
export const FORWARDED_BY = "capa-forwarded-by";
/** Trailer of a NotLeaderError: the leader's gRPC address, for clients that fail over by hint. */
export const LEADER_ADDRESS = "capa-leader-address";

/** Methods that are not audited mutations but change leader-held state: they go to the leader too. */
const LEADER_ONLY = new Set(["ReportLoad"]);

export function needsLeader(path: string, rule: MethodRule): boolean {
  return rule.mutating || LEADER_ONLY.has(shortMethod(path).split("/")[1] ?? "");
}

export interface LeaderView {
  /** This replica's id. */
  self: string;
  isLeader(): boolean;
  /** The live lease holder as last seen, with its advertised address when it wrote one. */
  currentLeader(): { holder: string; address?: string } | undefined;
}

/** A write reached a replica that cannot serve it or forward it now. UNAVAILABLE: retry (there, or later). */
export class NotLeaderError extends UnavailableError {
  constructor(
    message: string,
    readonly leaderAddress?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface WriteRouterOptions {
  /** Credentials for the follower → leader channel; plaintext by default. Undefined with TLS: reject instead. */
  channelCredentials?: ChannelCredentials | null;
  /** Longest a forwarded call may take when the caller set no deadline. */
  forwardTimeoutMs?: number;
}

export class WriteRouter {
  private readonly clients = new Map<string, Client>();
  private readonly creds: ChannelCredentials | null;
  private readonly timeoutMs: number;

  constructor(
    private readonly view: LeaderView,
    options: WriteRouterOptions = {},
  ) {
    this.creds = options.channelCredentials === undefined ? credentials.createInsecure() : options.channelCredentials;
    this.timeoutMs = options.forwardTimeoutMs ?? 30_000;
  }

  /** Whether this replica serves the call itself. */
  servesLocally(path: string, rule: MethodRule): boolean {
    return !needsLeader(path, rule) || this.view.isLeader();
  }

  /** Forwards a decoded request to the leader and resolves with its decoded answer, or rejects (ServiceError/NotLeaderError). */
  async forward(
    method: MethodDefinition<unknown, unknown>,
    request: unknown,
    incoming: Metadata,
    deadline?: number,
  ): Promise<unknown> {
    const leader = this.view.currentLeader();
    const name = shortMethod(method.path);
    if (incoming.get(FORWARDED_BY).length > 0)
      throw this.notLeader(
        `${name} was forwarded to this replica (${this.view.self}), which is not the leader`,
        leader,
      );
    if (!leader) throw new NotLeaderError(`no scheduler leader right now (failover in progress); retry ${name}`);
    if (!leader.address || leader.holder === this.view.self)
      throw this.notLeader(`this replica (${this.view.self}) is not the leader`, leader);
    if (this.creds === null)
      throw this.notLeader(`this replica (${this.view.self}) is not the leader and does not forward over TLS`, leader);
    const metadata = new Metadata();
    for (const auth of incoming.get("authorization")) metadata.add("authorization", auth);
    metadata.set(FORWARDED_BY, this.view.self);
    const options: CallOptions = { deadline: deadline ?? Date.now() + this.timeoutMs };
    const client = this.client(leader.address);
    try {
      return await new Promise((resolve, reject) =>
        client.makeUnaryRequest(
          method.path,
          method.requestSerialize,
          method.responseDeserialize,
          request,
          metadata,
          options,
          (err, response) => (err ? reject(err) : resolve(response)),
        ),
      );
    } catch (err) {
      const e = err as ServiceError;
      // The leader could not be reached (or is gone): say so and where it was; the client retries.
      if (e.code === status.UNAVAILABLE && !e.metadata?.get(LEADER_ADDRESS).length)
        throw this.notLeader(`the leader ${leader.holder} did not answer ${name} (${e.details})`, leader, e);
      throw err;
    }
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }

  private notLeader(why: string, leader: { holder: string; address?: string } | undefined, cause?: unknown) {
    const where = leader ? `; the leader is ${leader.holder}${leader.address ? ` at ${leader.address}` : ""}` : "";
    return new NotLeaderError(`${why}${where}; retry there`, leader?.address, cause ? { cause } : undefined);
  }

  private client(address: string): Client {
    let c = this.clients.get(address);
    if (!c) {
      // Addresses change only when the leader does; an old leader's channel is dropped.
      this.close();
      c = new Client(address, this.creds!, { "grpc.max_receive_message_length": 16 * 1024 * 1024 });
      this.clients.set(address, c);
    }
    return c;
  }
}
