import { defaultJobSpec, type Job, newTask } from "@capa/domain";
import { describe, expect, it } from "vitest";
import { reportOriginProblem } from "./report-origin.js";

function job(agentId: string): Job {
  const task = { ...newTask("j1", 0), agentId, epoch: 3 };
  return {
    id: "j1",
    tenant: "acme",
    spec: defaultJobSpec(),
    state: "running",
    tasks: [task],
  } as unknown as Job;
}

describe("reportOriginProblem", () => {
  const listedOn = (pairs: string[]) => (agent: string, task: string) => pairs.includes(`${agent}/${task}`);
  it.each([
    ["the holder, subject and payload agree", "a1", "a1", job("a1"), [], undefined],
    ["payload names another agent than the subject", "a2", "a1", job("a1"), [], "agent-mismatch"],
    ["an agent that never held the task", "a2", "a2", job("a1"), [], "not-held"],
    ["an agent still listed for it (a stale allocation being stopped)", "a2", "a2", job("a1"), ["a2/j1-0"], undefined],
    ["a task the job does not have", "a1", "a1", { ...job("a1"), tasks: [] } as Job, [], "not-held"],
    ["an unknown job (its own verdict)", "a1", "a1", undefined, [], undefined],
  ])("%s", (_name, subjectAgent, payloadAgent, j, listed, expected) => {
    expect(
      reportOriginProblem(subjectAgent, { agentId: payloadAgent, taskId: "j1-0" }, j, listedOn(listed as string[])),
    ).toBe(expected);
  });
});
