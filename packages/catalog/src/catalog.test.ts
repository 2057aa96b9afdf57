import { describe, expect, it } from "vitest";
import { parseCatalog, priceBook } from "./catalog.js";
import { parseCsv, parseCsvRecords } from "./csv.js";
import { canonicalCatalogModel } from "./models.js";
import { capaRegion } from "./regions.js";

describe("csv", () => {
  it.each([
    [
      "a,b\n1,2\n",
      [
        ["a", "b"],
        ["1", "2"],
      ],
    ],
    [
      "a,b\r\n1,2\r\n",
      [
        ["a", "b"],
        ["1", "2"],
      ],
    ],
    [
      'a,"b,c"\n"x ""y""",2',
      [
        ["a", "b,c"],
        ['x "y"', "2"],
      ],
    ],
    ['a,"multi\nline"', [["a", "multi\nline"]]],
    ["a,,c", [["a", "", "c"]]],
  ])("parses %j", (text, rows) => {
    expect(parseCsv(text)).toEqual(rows);
  });

  it("keys records by header name, whatever the column order", () => {
    expect(parseCsvRecords("Price,Region\n1.5,us-east-1\n")).toEqual([{ Price: "1.5", Region: "us-east-1" }]);
  });
});

describe("catalog mapping", () => {
  it.each([
    ["H100", "H100-80GB"],
    ["H100-SXM", "H100-80GB"],
    ["A100", "A100-40GB"],
    ["A100-80GB", "A100-80GB"],
    ["A100-80GB-SXM", "A100-80GB"],
    ["V100-32GB", "V100-32GB"],
    ["H200-SXM", "H200-141GB"],
    ["T4g", "T4-16GB"],
    ["RTXA6000", "A6000-48GB"],
    ["", undefined],
  ])("model %s → %s", (name, model) => {
    expect(canonicalCatalogModel(name)).toBe(model);
  });

  it.each([
    ["us-east-1", "us-east"],
    ["us-east4", "us-east"],
    ["europe-west4", "eu-west"],
    ["europe-west3", "eu-central"],
    ["eu-central-1", "eu-central"],
    ["NL", "eu-west"],
    ["US", "us-central"],
    ["asia-northeast1", "ap-northeast"],
    ["mars-1", undefined],
  ])("region %s → %s", (cloud, region) => {
    expect(capaRegion(cloud)).toBe(region);
  });
});

describe("parseCatalog", () => {
  const aws = [
    "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,GpuInfo,Price,SpotPrice,Region,AvailabilityZone",
    "p5.48xlarge,H100,8.0,192.0,2048.0,\"{'Gpus': [{'Name': 'H100'}]}\",123.19496,40.0976,us-east-1,use1-az1",
    "p5e.48xlarge,H200,8.0,192.0,2048.0,,,40.0,us-east-1,use1-az1",
    "g5.xlarge,A10G,1.0,4.0,16.0,,1.006,1.006,eu-west-1,euw1-az1",
  ].join("\n");

  it("prices per GPU in integer micros and counts what it skips", () => {
    const { entries, skipped } = parseCatalog("aws", aws);
    expect(skipped).toEqual({ "no-on-demand-price": 1 });
    expect(entries).toHaveLength(2);
    expect(entries[0]).toMatchObject({
      region: "us-east",
      gpuModel: "H100-80GB",
      gpusPerInstance: 8,
      onDemandPerGpuHour: 15_399_370,
      interruptiblePerGpuHour: 5_012_200,
    });
    // A spot price equal to on-demand is no interruptible discount.
    expect(entries[1]).toMatchObject({
      gpuModel: "A10G-24GB",
      onDemandPerGpuHour: 1_006_000,
      interruptiblePerGpuHour: 0,
    });
  });

  it("keeps the cheapest price per region and model", () => {
    const { entries } = parseCatalog("aws", aws);
    const book = priceBook([...entries, { ...entries[0]!, onDemandPerGpuHour: 2_000_000, interruptiblePerGpuHour: 0 }]);
    expect(book.get("us-east")?.get("H100-80GB")).toEqual({
      gpuModel: "H100-80GB",
      onDemandPerHour: 2_000_000,
      interruptiblePerHour: 0,
    });
  });
});
