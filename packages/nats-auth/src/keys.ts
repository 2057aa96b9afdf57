/** NATS user nkeys (Ed25519): the seed stays with its owner, the server config holds only the public key. */
import { createUser, fromPublic, fromSeed } from "@nats-io/nkeys";
import { InvalidIdentityError } from "./errors.js";

export interface UserKeys {
  /** `U...`: goes into the server's authorization block. */
  publicKey: string;
  /** `SU...`: the secret; written 0600 and given only to the key's owner. */
  seed: string;
}

export function newUserKeys(): UserKeys {
  const kp = createUser();
  return { publicKey: kp.getPublicKey(), seed: new TextDecoder().decode(kp.getSeed()) };
}

/** The public key of a user seed; throws InvalidIdentityError for anything that is not a user seed. */
export function publicKeyOfSeed(seed: string): string {
  const text = seed.trim();
  try {
    if (!text.startsWith("SU")) throw new Error("not a user seed (SU...)");
    return fromSeed(new TextEncoder().encode(text)).getPublicKey();
  } catch (cause) {
    throw new InvalidIdentityError(`not an nkey user seed: ${(cause as Error).message}`, { cause });
  }
}

/** Throws InvalidIdentityError unless `key` is a well-formed user public key (`U` + base32 with checksum). */
export function assertUserPublicKey(key: string): string {
  try {
    if (!key.startsWith("U")) throw new Error("a user public key starts with U");
    fromPublic(key);
  } catch (cause) {
    throw new InvalidIdentityError(`not an nkey user public key: ${JSON.stringify(key)}`, { cause });
  }
  return key;
}
