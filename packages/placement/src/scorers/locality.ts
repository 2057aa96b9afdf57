import type { Scorer } from "../pipeline.js";

/**
 * Gangs: the share of the gang in the candidate's fabric domain. 100 when the whole gang shares one domain
 * (always, unless the job allows spanning). Neutral for other kinds.
 */
export const localityScorer: Scorer = {
  name: "locality",
  score: (ctx, c, peers) => {
    if (ctx.spec.kind !== "training" || peers.length === 0) return 100;
    let same = 1;
    for (const p of peers) if (p.offer.domainKey === c.offer.domainKey) same++;
    return (100 * same) / (peers.length + 1);
  },
};
