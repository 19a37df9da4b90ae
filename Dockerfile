# syntax=docker/dockerfile:1
# InferFlux, CPU image. Two stages: `build` compiles the TypeScript and generates the demo model;
# the runtime stage carries only production node_modules, dist/, the default config and the model,
# and runs as the image's unprivileged `node` user (uid 1000).
#
# Base: Debian 12 (bookworm), glibc 2.36. The native addons need at most GLIBC_2.34 (checked with
# `objdump -T` on uWebSockets.js's uws_linux_x64_115.node and node-llama-cpp's llama-addon.node), so
# an older base (bullseye, glibc 2.31) would not load them; Node 20 is the engine the project pins.
#
#   docker build -t inferflux .
#   docker run --rm -p 8080:8080 -e INFERFLUX_API_KEYS='change-me:generate|read' inferflux
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
# gcc compiles the persistent llama.cpp thread pool (src/runtime/llama/threadpool) in `npm run build`;
# only its output, dist/native, reaches the runtime image.
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# Install scripts stay off: every native addon here ships prebuilt binaries for linux x64/arm64 in
# its optional packages (node-llama-cpp's postinstall would only re-check them, and would try the
# network to build llama.cpp from source if they were missing, which a build must not do silently).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY config ./config
# The demo model (config/server.yaml: models/demo.gguf) is made now, so the container starts
# without writing to its image and a read-only root filesystem works.
# The engine loads llama.cpp with gpu: false (Metal only for backend: mps, refused off macOS), so
# the CUDA and Vulkan prebuilt binaries (about 610 MB of node_modules' 900) are never used in this
# CPU image.
RUN npm run -s build \
 && node dist/cli/make-model.js --shape tiny --out models/demo.gguf \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund \
 && rm -rf node_modules/@node-llama-cpp/*-cuda* node_modules/@node-llama-cpp/*-vulkan*

FROM ${NODE_IMAGE} AS runtime
# A container is reached from outside its network namespace, so it listens on every interface
# (the server then refuses to start without API keys or OIDC: there is no open mode off loopback).
ENV NODE_ENV=production \
    INFERFLUX_HOST=0.0.0.0 \
    INFERFLUX_POLICY_STORE=/var/lib/inferflux/policy/policy_store.conf \
    INFERFLUX_MODELS_STATE=/var/lib/inferflux/policy/models_state.json \
    INFERFLUX_AUDIT_LOG=/var/log/inferflux/audit.log
WORKDIR /app
# Application files stay owned by root: the server process can read them but not change them.
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/config/server.yaml ./config/server.yaml
COPY --from=build /app/models ./models
# The only places the server writes: the policy store and the runtime models state (mount a volume
# here, or use Redis for the store) and the audit log (ship it from here, or mount a volume).
RUN mkdir -p /var/lib/inferflux/policy /var/log/inferflux \
 && chown -R node:node /var/lib/inferflux /var/log/inferflux
VOLUME ["/var/lib/inferflux/policy", "/var/log/inferflux"]
USER node
EXPOSE 8080
# gRPC, when server.grpc.enabled (INFERFLUX_GRPC_ENABLED=true).
EXPOSE 50051
# Liveness for plain `docker run`; Kubernetes uses the chart's probes on /livez and /readyz instead.
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.INFERFLUX_PORT||8080)+'/livez').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "dist/main.js"]
