/**
 * `capa agent …` alone: the program with only the agent verb. An agent runs for months; with every verb loaded
 * (the scheduler behind `capa up`, the gateway, the gRPC clients) its process carried their modules all along.
 */
import type { Command } from "commander";
import { agentCommand } from "./commands/agent.js";
import { finishProgram, rootProgram } from "./program-root.js";

export function buildAgentProgram(): Command {
  const program = rootProgram();
  program.addCommand(agentCommand());
  return finishProgram(program);
}
