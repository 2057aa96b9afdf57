/** Each GPU needs its own index in 0..count-1: more GPU entries than distinct indices is a padded advert. */
import type { AdvertCheck } from "./types.js";

export const gpuIndices: AdvertCheck = {
  reason: "more-gpus-than-indices",
  check: ({ advert }) => {
    const indices = new Set(advert.gpus.map((g) => g.index));
    if (indices.size !== advert.gpus.length) return `${advert.gpus.length} GPUs but ${indices.size} distinct indices`;
    const bad = advert.gpus.find((g) => !Number.isInteger(g.index) || g.index < 0 || g.index >= advert.gpus.length);
    return bad ? `GPU index ${bad.index} is outside 0..${advert.gpus.length - 1}` : undefined;
  },
};
