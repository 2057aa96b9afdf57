import { describe, expect, it } from "vitest";
import { ModelMetrics, parseMetricsLine } from "./model-metrics.js";

describe("parseMetricsLine", () => {
  it.each([
    ['CAPA_METRICS {"drift_score": 0.4, "predictions": 12}', { drift_score: 0.4, predictions: 12 }],
    ['CAPA_METRICS {"drift_score": 0.4}\r', { drift_score: 0.4 }],
    ['CAPA_METRICS {"Bad": 1, "ok": 2, "s": "x", "n": null}', { ok: 2 }],
    ["CAPA_METRICS {}", {}],
  ])("%j → %j", (line, want) => expect(parseMetricsLine(line)).toEqual(want));

  it.each([
    "hello",
    "CAPA_METRICS",
    "CAPA_METRICS not json",
    "CAPA_METRICS [1,2]",
    'CAPA_METRICS "x"',
    ' CAPA_METRICS {"a": 1}',
  ])("%j is not a marker", (line) => expect(parseMetricsLine(line)).toBeUndefined());
});

describe("ModelMetrics", () => {
  it("parses markers split across chunks byte by byte and keeps the latest values", () => {
    const m = new ModelMetrics();
    const text = 'log line\nCAPA_METRICS {"drift_score": 0.1}\nCAPA_METRICS {"drift_score": 0.7, "predictions": 3}\n';
    for (const byte of Buffer.from(text)) m.write(Buffer.from([byte]));
    expect(m.snapshot()).toEqual({ drift_score: 0.7, predictions: 3 });
  });

  it("drops an overlong line, then reads the next", () => {
    const m = new ModelMetrics();
    m.write(`CAPA_METRICS {"a": 1, "pad": "${"x".repeat(5_000)}`);
    m.write('"}\nCAPA_METRICS {"b": 2}\n');
    expect(m.snapshot()).toEqual({ b: 2 });
  });

  it("keeps at most 32 metrics", () => {
    const m = new ModelMetrics();
    const doc = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`m${i}`, i]));
    m.write(`CAPA_METRICS ${JSON.stringify(doc)}\n`);
    expect(Object.keys(m.snapshot())).toHaveLength(32);
  });
});
