/**
 * `capa agent enroll|revoke` (operator): gives an agent its own NATS user. Enrolling writes the agent's nkey seed
 * (0600) into the auth directory and rewrites the server's authorization block (`<auth-dir>/auth.conf`, included
 * from the nats-server config); `--nats-pid` makes the running server reload it. Hand the seed file to the
 * provider: `capa agent --id <id> --region <region> --nats-nkey <file>`.
 *
 * Like `agent price`, `--id` and `--region` belong to `capa agent`, so these read them through optsWithGlobals().
 */
import { InvalidIdentityError, openAuthDir, reloadNatsServer } from "@capa/nats-auth";
import { Command } from "commander";
import { jsonOption, print, printJson } from "../context.js";
import { CliError } from "../errors.js";
import { defaultAuthDir } from "../nats-credentials.js";
import { parseInteger } from "../spec.js";

interface EnrollFlags {
  id?: string;
  region?: string;
  authDir?: string;
  natsPid?: number;
  keepExisting?: boolean;
  json?: boolean;
}

export function agentEnrollCommand(): Command {
  return jsonOption(
    new Command("enroll")
      .description("give an agent its own NATS user (nkey): writes its seed file and the server's authorization")
      .option("--auth-dir <dir>", "NATS auth directory (env CAPA_NATS_AUTH_DIR; default ~/.capa/nats-auth)")
      .option("--nats-pid <pid>", "signal this nats-server to reload its config (SIGHUP)", parseInteger)
      .option("--keep-existing", "an agent already enrolled in that region keeps its key (for scripts re-run)"),
  ).action(async (_flags: EnrollFlags, self: Command) => {
    const flags = self.optsWithGlobals<EnrollFlags>();
    if (!flags.id || !flags.region) throw new CliError("agent enroll needs --id and --region");
    const dir = flags.authDir ?? defaultAuthDir();
    let enrolment: { agentId: string; region: string; publicKey: string; seedFile: string };
    let authConf: string;
    try {
      const auth = openAuthDir(dir);
      const known = auth.agents().find((a) => a.agentId === flags.id);
      if (flags.keepExisting && known && known.region !== flags.region) {
        throw new CliError(`agent ${flags.id} is enrolled in region ${known.region}, not ${flags.region}`);
      }
      enrolment =
        flags.keepExisting && known
          ? { ...known, seedFile: auth.agentSeedFile(known.agentId) }
          : auth.enroll({ agentId: flags.id, region: flags.region });
      authConf = auth.authConfFile;
    } catch (err) {
      if (err instanceof CliError) throw err;
      const prefix = err instanceof InvalidIdentityError ? "invalid argument: " : "";
      throw new CliError(`${prefix}${(err as Error).message}`);
    }
    reload(flags.natsPid);
    if (flags.json) {
      printJson({
        agentId: enrolment.agentId,
        region: enrolment.region,
        publicKey: enrolment.publicKey,
        seedFile: enrolment.seedFile,
        authConf,
        reloaded: flags.natsPid !== undefined,
      });
      return;
    }
    print(
      [
        `enrolled agent ${enrolment.agentId} (${enrolment.region}) as NATS user ${enrolment.publicKey}`,
        `seed:          ${enrolment.seedFile} (0600; give it to the agent: --nats-nkey ${enrolment.seedFile})`,
        `authorization: ${authConf}${flags.natsPid !== undefined ? " (server reloaded)" : " (reload nats-server to apply)"}`,
      ].join("\n"),
    );
  });
}

export function agentRevokeCommand(): Command {
  return new Command("revoke")
    .description("remove an agent's NATS user and seed (it is disconnected at the server's next reload)")
    .option("--auth-dir <dir>", "NATS auth directory (env CAPA_NATS_AUTH_DIR; default ~/.capa/nats-auth)")
    .option("--nats-pid <pid>", "signal this nats-server to reload its config (SIGHUP)", parseInteger)
    .action(async (_flags: EnrollFlags, self: Command) => {
      const flags = self.optsWithGlobals<EnrollFlags>();
      if (!flags.id) throw new CliError("agent revoke needs --id");
      let removed: boolean;
      try {
        removed = openAuthDir(flags.authDir ?? defaultAuthDir()).revoke(flags.id);
      } catch (err) {
        throw new CliError((err as Error).message);
      }
      if (!removed) throw new CliError(`agent ${flags.id} is not enrolled`);
      reload(flags.natsPid);
      print(`revoked agent ${flags.id}`);
    });
}

function reload(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    reloadNatsServer(pid);
  } catch (err) {
    throw new CliError(`cannot signal nats-server ${pid} to reload: ${(err as Error).message}`);
  }
}
