# capa scheduler: gRPC API (JobService, OperatorService) + planner, against NATS with JetStream.
#   docker build -f docker/scheduler.Dockerfile -t capa/scheduler .        (from the repository root)
#   docker run --rm -p 50051:50051 capa/scheduler scheduler --nats-url nats://nats:4222 --grpc-address 0.0.0.0:50051

# ---- build: install everything, compile the CLI and the workspaces it imports -------------------------
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY . .
RUN npm ci --ignore-scripts --no-audit --no-fund \
 && npx tsc -b packages/cli \
 && sh docker/stage-runtime.sh /out

# ---- runtime: compiled JavaScript and production dependencies only ---------------------------------------
FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /out /app
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund --workspace @capa/cli \
 && npm cache clean --force \
 && mkdir -p /var/lib/capa && chown node:node /var/lib/capa
# State (the receipt signing key unless --receipt-key points elsewhere) lives here; mount a volume on it.
VOLUME /var/lib/capa
USER node
EXPOSE 50051
ENTRYPOINT ["node", "/app/packages/cli/bin/capa.js"]
CMD ["scheduler", "--nats-url", "nats://nats:4222", "--grpc-address", "0.0.0.0:50051", "--data-dir", "/var/lib/capa"]
