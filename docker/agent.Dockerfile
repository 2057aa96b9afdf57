# capa agent: advertises this machine's GPUs and prices over NATS and runs the tasks it is assigned.
#   docker build -f docker/agent.Dockerfile -t capa/agent .                (from the repository root)
#
# Real GPUs: run with the NVIDIA container toolkit, which mounts nvidia-smi and the driver into the container;
# the agent discovers GPUs with nvidia-smi and pins each task with CUDA_VISIBLE_DEVICES:
#   docker run --rm --gpus all capa/agent agent --nats-url nats://nats:4222 --region eu-west
# Simulated GPUs (no driver needed; tasks run as plain processes):
#   docker run --rm capa/agent agent --nats-url nats://nats:4222 --region eu-west --simulate-gpus 4xH100-80GB
# Without --price the agent advertises the catalog prices of its region (built-in defaults in this image;
# mount a catalog and set CAPA_PRICES_DIR to use another).

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
# tini reaps the task processes the agent starts and forwards SIGTERM so tasks are stopped cleanly.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /out /app
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund --workspace @capa/cli \
 && npm cache clean --force \
 && mkdir -p /var/lib/capa \
 && chown node:node /var/lib/capa
# NVIDIA_* tell the container toolkit to expose every GPU and the nvidia-smi utility when run with --gpus.
ENV NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
USER node
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/packages/cli/bin/capa.js"]
CMD ["agent", "--nats-url", "nats://nats:4222", "--region", "local", "--work-dir", "/var/lib/capa"]
