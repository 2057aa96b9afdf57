/**
 * The request fix of @capa/bus (request-fix.ts) against a real nats-server: with it installed, a request still
 * gets its answer, a subject nobody serves still fails with a RequestError naming no responders, and a responder
 * that never answers still times out; and an answered request no longer builds the discarded "cancelled" error.
 */
import { connectBus, type NatsConnection } from "@capa/bus";
import { type NatsServerHandle, startNatsServer } from "@capa/testkit";
import { RequestError, RequestOne, TimeoutError } from "@nats-io/nats-core/internal";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let nats: NatsServerHandle;
let nc: NatsConnection;

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connectBus({ servers: nats.url, name: "request-fix", asyncTraces: false });
});

afterAll(async () => {
  await nc?.close();
  await nats?.stop();
});

describe("request fix", () => {
  it("answers, refuses and times out as before, without an error per answered request", async () => {
    const echo = nc.subscribe("fix.echo", {
      callback: (_err, m) => {
        m.respond(m.data);
      },
    });
    const silent = nc.subscribe("fix.silent", { callback: () => {} });
    let built = 0;
    const cancel = RequestOne.prototype.cancel;
    RequestOne.prototype.cancel = function (this: RequestOne, err?: Error) {
      built++;
      return cancel.call(this, err);
    };
    try {
      const answers = await Promise.all(
        Array.from({ length: 20 }, (_, i) => nc.request("fix.echo", `m${i}`, { timeout: 5_000 })),
      );
      expect(answers.map((m) => m.string())).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`));
      expect(built).toBe(0); // answered requests leave the mux without the cancel() that builds an error

      const refused = await nc.request("fix.nobody", "x", { timeout: 5_000 }).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(RequestError);
      expect((refused as RequestError).isNoResponders()).toBe(true);

      const late = await nc.request("fix.silent", "x", { timeout: 100 }).catch((e: unknown) => e);
      expect(late).toBeInstanceOf(TimeoutError);
    } finally {
      RequestOne.prototype.cancel = cancel;
      echo.unsubscribe();
      silent.unsubscribe();
    }
  });
});
