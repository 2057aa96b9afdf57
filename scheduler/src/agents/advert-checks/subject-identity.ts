/**
 * The advert must describe the agent whose subject it came on. With per-agent NATS users that subject is the
 * sender's identity, so this is also where "a new boot id for an agent id it does not own" ends: another agent's
 * id in the payload is refused whatever its boot id (named apart when that id is already known under another boot).
 */
import type { AdvertCheck } from "./types.js";

export const agentIdMatchesSubject: AdvertCheck = {
  reason: "agent-id-differs-from-subject",
  check: ({ advert, subject }) =>
    advert.agentId === subject.agentId
      ? undefined
      : `advert for ${advert.agentId} published on the subject of ${subject.agentId}`,
};

export const bootIdOwned: AdvertCheck = {
  reason: "boot-id-for-unowned-agent",
  check: ({ advert, subject, known }) => {
    if (advert.agentId === subject.agentId) return undefined;
    const existing = known(advert.agentId);
    if (!existing || existing.bootId === advert.bootId) return undefined;
    return `agent ${subject.agentId} sent a new boot id for agent ${advert.agentId}, which it does not own`;
  },
};

export const regionMatchesSubject: AdvertCheck = {
  reason: "region-differs-from-subject",
  check: ({ advert, subject }) =>
    advert.region === subject.region
      ? undefined
      : `advert for region ${advert.region} published under region ${subject.region}`,
};
