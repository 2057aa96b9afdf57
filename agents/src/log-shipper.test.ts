import type { LogChunk } from "@capa/domain";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { LogShipper } from "./log-shipper.js";

function collector(accept: (chunk: LogChunk) => boolean = () => true) {
  const chunks: LogChunk[] = [];
  const shipper = new LogShipper({
    taskId: "t1",
    jobId: "j1",
    now: () => 42,
    publish: (chunk) => {
      if (!accept(chunk)) return false;
      chunks.push(chunk);
      return true;
    },
  });
  const text = () => chunks.map((c) => `${c.seq}:${c.stream}:${Buffer.from(c.data).toString()}`);
  return { chunks, shipper, text };
}

describe("LogShipper", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("batches small writes into one chunk after 100 ms", () => {
    const { shipper, text, chunks } = collector();
    shipper.write("stdout", Buffer.from("a\n"));
    shipper.write("stdout", Buffer.from("b\n"));
    vi.advanceTimersByTime(99);
    expect(chunks).toHaveLength(0);
    vi.advanceTimersByTime(1);
    expect(text()).toEqual(["1:stdout:a\nb\n"]);
    expect(chunks[0]).toMatchObject({ taskId: "t1", jobId: "j1", atMs: 42 });
  });

  it("flushes at 32 KiB without waiting, splitting large writes", () => {
    const { shipper, chunks } = collector();
    shipper.write("stdout", Buffer.alloc(80 * 1024, 120));
    expect(chunks.map((c) => c.data.byteLength)).toEqual([32 * 1024, 32 * 1024]);
    shipper.close();
    expect(chunks.map((c) => c.data.byteLength)).toEqual([32 * 1024, 32 * 1024, 16 * 1024]);
    expect(chunks.map((c) => c.seq)).toEqual([1, 2, 3]);
  });

  it("keeps stdout/stderr interleaving by closing the chunk on a stream switch", () => {
    const { shipper, text } = collector();
    shipper.write("stdout", Buffer.from("1"));
    shipper.write("stderr", Buffer.from("2"));
    shipper.write("stdout", Buffer.from("3"));
    shipper.close();
    expect(text()).toEqual(["1:stdout:1", "2:stderr:2", "3:stdout:3"]);
  });

  it("never loses the tail: close flushes and later writes are ignored", () => {
    const { shipper, text } = collector();
    shipper.write("stdout", Buffer.from("tail"));
    shipper.close();
    shipper.write("stdout", Buffer.from("late"));
    vi.advanceTimersByTime(1000);
    expect(text()).toEqual(["1:stdout:tail"]);
  });

  it("copies data, so a reused source buffer cannot change what is shipped", () => {
    const { shipper, text } = collector();
    const buf = Buffer.from("abc");
    shipper.write("stdout", buf);
    buf.write("xyz");
    shipper.close();
    expect(text()).toEqual(["1:stdout:abc"]);
  });

  it("counts refused bytes and says so once the backlog accepts again; seq stays contiguous", () => {
    let open = false;
    const { shipper, text } = collector(() => open);
    shipper.write("stdout", Buffer.from("lost"));
    shipper.flush();
    expect(shipper.droppedBytes).toBe(4);
    open = true;
    shipper.write("stdout", Buffer.from("kept"));
    shipper.close();
    expect(text()).toEqual(["1:system:[capa] 4 bytes of output dropped\n", "2:stdout:kept"]);
    expect(shipper.droppedBytes).toBe(0);
  });
});
