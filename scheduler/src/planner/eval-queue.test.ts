import { describe, expect, it } from "vitest";
import { EvalQueue } from "./eval-queue.js";

describe("evaluation queue", () => {
  it("keeps one entry per job, in first-request order", () => {
    let now = 0;
    const q = new EvalQueue(() => now);
    q.enqueue("a", "submitted");
    q.enqueue("b", "submitted");
    q.enqueue("a", "agent joined");
    expect(q.depth).toBe(2);
    expect(q.take()?.jobId).toBe("a");
    expect(q.take()?.jobId).toBe("b");
    expect(q.take()).toBeUndefined();
    now = 1;
  });

  it("holds delayed entries until their time; a fresh request pulls a delayed one forward", () => {
    let now = 100;
    const q = new EvalQueue(() => now);
    q.enqueue("a", "retry", 50, 1);
    expect(q.take()).toBeUndefined();
    now = 150;
    expect(q.take()).toMatchObject({ jobId: "a", attempt: 1 });
    q.enqueue("b", "retry", 50);
    q.enqueue("b", "capacity freed");
    expect(q.take()?.jobId).toBe("b");
  });

  it("drops beyond its bound and counts the drops", () => {
    const q = new EvalQueue(() => 0, 2);
    q.enqueue("a", "x");
    q.enqueue("b", "x");
    q.enqueue("c", "x");
    expect(q.depth).toBe(2);
    expect(q.dropped).toBe(1);
  });

  it("wakes a waiter on enqueue", async () => {
    const q = new EvalQueue(Date.now);
    const waiting = q.wait();
    q.enqueue("a", "x");
    await waiting;
    expect(q.take()?.jobId).toBe("a");
  });
});
