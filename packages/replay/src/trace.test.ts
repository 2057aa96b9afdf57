import { describe, expect, it } from "vitest";
import { convertTrace, formatTrace } from "./convert.js";
import { FleetError, TraceError } from "./errors.js";
import { parseFleet } from "./fleet.js";
import { parseTrace } from "./trace.js";

const HEADER = "job_id,submit_s,duration_s,gpus,gpu_model,kind";

function traceError(text: string): TraceError {
  try {
    parseTrace(text, "t.csv");
  } catch (error) {
    if (error instanceof TraceError) return error;
    throw error;
  }
  throw new Error("parsed without error");
}

describe("parseTrace", () => {
  it("reads every column, optional ones included, by header name in any order", () => {
    const jobs = parseTrace(
      [
        "kind,gpus,job_id,duration_s,submit_s,gpu_model,region,max_price,data_region,priority,replicas,budget,interruptible,extra",
        "training,8,j1,3600,10.5,H100|A100-80GB,eu-west|us-east,$2.50,eu-west,3,2,100,1,ignored",
        'batch,1,"j,2",60,0,,,,,,,,,',
      ].join("\r\n"),
    );
    expect(jobs[0]).toMatchObject({
      id: "j1",
      line: 2,
      submitS: 10.5,
      durationS: 3600,
      gpus: 8,
      replicas: 2,
      gpuModels: ["H100-80GB", "A100-80GB"],
      kind: "training",
      regions: ["eu-west", "us-east"],
      maxPricePerGpuHour: 2_500_000,
      dataRegion: "eu-west",
      priority: 3,
      budget: 100_000_000,
      interruptible: true,
    });
    expect(jobs[1]).toMatchObject({
      id: "j,2",
      line: 3,
      gpuModels: [],
      replicas: 1,
      priority: 0,
      maxPricePerGpuHour: 0,
    });
  });

  it("names the missing column on line 1", () => {
    const e = traceError("job_id,submit_s,gpus,gpu_model,kind\nj1,0,1,,batch");
    expect(e.line).toBe(1);
    expect(e.message).toContain("missing column duration_s");
    expect(e.message).toMatch(/^t\.csv: line 1: /);
  });

  it("names line and column of a negative duration", () => {
    const e = traceError(`${HEADER}\nj1,0,60,1,,batch\nj2,5,-1,1,,batch`);
    expect([e.line, e.column, e.columnName]).toEqual([3, 3, "duration_s"]);
    expect(e.message).toBe("t.csv: line 3, column 3 (duration_s): must be non-negative, got -1");
  });

  it("names line and column of an unknown GPU model", () => {
    const e = traceError(`${HEADER}\nj1,0,60,1,Z9000,batch`);
    expect([e.line, e.column, e.columnName]).toEqual([2, 5, "gpu_model"]);
    expect(e.message).toContain('unknown GPU model "Z9000"');
  });

  it("rejects junk numbers, fractional GPUs, unknown kinds, bad money and duplicate ids, each where it is", () => {
    expect(traceError(`${HEADER}\nj1,soon,60,1,,batch`).message).toContain(
      'line 2, column 2 (submit_s): must be a number, got "soon"',
    );
    expect(traceError(`${HEADER}\nj1,0,60,1.5,,batch`).message).toContain(
      "line 2, column 4 (gpus): must be an integer",
    );
    expect(traceError(`${HEADER}\nj1,0,60,1,,serving`).message).toContain("line 2, column 6 (kind): must be one of");
    expect(traceError(`${HEADER},max_price\nj1,0,60,1,,batch,cheap`).message).toContain("line 2, column 7 (max_price)");
    expect(traceError(`${HEADER}\nj1,0,60,1,,batch\nj1,1,60,1,,batch`).message).toContain(
      'line 3, column 1 (job_id): duplicate job id "j1" (first on line 2)',
    );
  });

  it("reports malformed CSV (an unclosed quote, a short row) with its line", () => {
    expect(traceError(`${HEADER}\nj1,0,60,1,,batch\n"j2,0,60,1,,batch`).line).toBe(3);
    expect(traceError(`${HEADER}\nj1,0,60,1,,batch\nj2,0,60`).line).toBe(3);
  });
});

describe("parseFleet", () => {
  it("reads agents with spot prices and defaults", () => {
    const [a] = parseFleet(
      "agent_id,region,gpu_model,gpus,price_per_gpu_hour,spot_price\na1,eu-west,H100,4,2.49,1.20",
      1000,
    );
    expect(a).toMatchObject({ id: "a1", region: "eu-west", residency: "eu", lastSeenMs: 1000 });
    expect(a!.gpus).toHaveLength(4);
    expect(a!.gpus[0]).toEqual({ index: 0, model: "H100-80GB", vramMib: 80 * 1024, healthy: true });
    expect(a!.prices).toEqual([{ gpuModel: "H100-80GB", onDemandPerHour: 2_490_000, interruptiblePerHour: 1_200_000 }]);
  });

  it("names line and column of a bad cell", () => {
    expect(() =>
      parseFleet("agent_id,region,gpu_model,gpus,price_per_gpu_hour\na1,eu-west,H100,4,0", 0, "f.csv"),
    ).toThrow(new FleetError("f.csv", 2, 5, "price_per_gpu_hour", "must be a positive dollar amount"));
    expect(() => parseFleet("agent_id,region,gpu_model,gpus\na1,eu-west,H100,4", 0, "f.csv")).toThrow(
      /f\.csv: line 1: missing column price_per_gpu_hour/,
    );
  });
});

describe("convertTrace", () => {
  it("turns Alibaba 2023 pods into batch jobs from the first submission, skipping CPU-only pods", () => {
    const text = [
      "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time",
      "p0,1000,100,1,1000,V100M16|V100M32,LS,Running,100,700,160",
      "p1,1000,100,0,0,,LS,Running,120,500,120",
      "p2,1000,100,8,1000,G2,BE,Running,130,1130,0",
    ].join("\n");
    const { jobs, skipped } = convertTrace("alibaba-v2023", text);
    expect(skipped).toEqual({ "no GPU": 1 });
    expect(
      jobs.map((j) => [j.id, j.submitS, j.durationS, j.gpus, j.kind, j.gpuModels.join("|"), j.interruptible]),
    ).toEqual([
      ["p0", 0, 540, 1, "batch", "V100-16GB|V100-32GB", false],
      ["p2", 30, 1000, 8, "training", "", true],
    ]);
    // The written CSV reads back to the same jobs.
    const back = parseTrace(formatTrace(jobs));
    expect(back.map((j) => ({ ...j, line: 0 }))).toEqual(jobs.map((j, i) => ({ ...j, line: 0, id: jobs[i]!.id })));
  });

  it("turns Alibaba 2025 GPU instances into inference jobs, skipping those outside the window", () => {
    const text = [
      "instance_sn,role,app_name,cpu_request,cpu_limit,gpu_request,gpu_limit,rdma_request,rdma_limit,memory_request,memory_limit,disk_request,disk_limit,max_instance_per_node,creation_time,scheduled_time,deletion_time",
      "i0,HN,a,1,1,1,1,0,0,1,1,1,1,8,,,",
      "i1,HN,a,1,1,1,1,0,0,1,1,1,1,8,10.5,11,70.5",
      "i2,CN,a,1,1,0,0,0,0,1,1,1,1,8,1,1,5",
    ].join("\n");
    const { jobs, skipped } = convertTrace("alibaba-v2025", text);
    expect(skipped).toEqual({ "outside the trace window": 1, "no GPU": 1 });
    expect(jobs).toHaveLength(1);
    expect(jobs[0]).toMatchObject({ id: "i1", submitS: 0, durationS: 60, kind: "inference", gpus: 1 });
  });
});
