/**
 * Creates a durable consumer, idempotently. One that exists with another config is kept (it resumes where it
 * stopped), except when its filter subject differs: task subjects gained the reporting agent's id as a last token,
 * and a consumer still filtering on the old 5-token subjects would silently receive nothing. Such a consumer is
 * deleted and created again (re-delivery is harmless: folding and usage checks are idempotent).
 */
import type { Store } from "@capa/bus";
import type { Logger } from "pino";

type ConsumerConfig = Parameters<Store["jsm"]["consumers"]["add"]>[1] & {
  durable_name: string;
  filter_subject: string;
};

export async function ensureDurableConsumer(
  store: Store,
  stream: string,
  config: ConsumerConfig,
  logger: Logger,
): Promise<void> {
  try {
    await store.jsm.consumers.add(stream, config);
    return;
  } catch (err) {
    const existing = await store.jsm.consumers.info(stream, config.durable_name).catch(() => undefined);
    if (!existing || existing.config.filter_subject === config.filter_subject) {
      logger.warn({ err, consumer: config.durable_name }, "consumer exists with a different config; using it as is");
      return;
    }
    logger.warn(
      { consumer: config.durable_name, from: existing.config.filter_subject, to: config.filter_subject },
      "consumer filters an old subject; creating it again",
    );
    await store.jsm.consumers.delete(stream, config.durable_name);
    await store.jsm.consumers.add(stream, config);
  }
}
