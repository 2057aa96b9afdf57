/** A GPU UUID names one physical GPU: listed twice in one advert, or already advertised by another live agent. */
import type { AdvertCheck } from "./types.js";

export const gpuUuidsUnique: AdvertCheck = {
  reason: "duplicate-gpu-uuid",
  check: ({ advert }) => {
    const seen = new Set<string>();
    for (const g of advert.gpus) {
      if (!g.uuid) continue;
      if (seen.has(g.uuid)) return `GPU ${g.uuid} is listed twice`;
      seen.add(g.uuid);
    }
    return undefined;
  },
};

export const gpuUuidsNotHeldElsewhere: AdvertCheck = {
  reason: "gpu-uuid-held-by-another-agent",
  check: ({ advert, uuidHolder }) => {
    for (const g of advert.gpus) {
      if (!g.uuid) continue;
      const holder = uuidHolder(g.uuid);
      if (holder !== undefined && holder !== advert.agentId) return `GPU ${g.uuid} is advertised by agent ${holder}`;
    }
    return undefined;
  },
};
