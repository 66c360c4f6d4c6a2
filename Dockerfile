# syntax=docker/dockerfile:1
#
# Memory Layer image: the TypeScript sources run directly through tsx (a runtime dependency), so
# there is no compile step; the build stage only installs production dependencies.
#
#   docker build -t memory-layer .
#   docker run --rm -p 8080:8080 -v memory-layer-data:/data memory-layer            # API + worker, embedded PGlite
#   docker run --rm -e DATABASE_URL=postgres://… memory-layer worker                 # a worker only
#
# No HEALTHCHECK: Kubernetes ignores it (the chart has probes), and with client certificates
# required a plain check could not connect. Use /healthz and /readyz (`worker` serves them, with
# /metrics, on WORKER_HTTP_PORT, 9464).

ARG NODE_IMAGE=node:20-bookworm

# ---- deps: production dependencies only (native modules built or fetched from their prebuilds
# here, where compilers exist; the runtime image has none).
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund \
  && npm cache clean --force

# ---- runtime
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    DATA_DIR=/data \
    NPM_CONFIG_UPDATE_NOTIFIER=false
RUN groupadd --system --gid 10001 memory-layer \
  && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
       --shell /usr/sbin/nologin memory-layer \
  && mkdir -p /data \
  && chown 10001:10001 /data \
  && chmod 0750 /data
WORKDIR /app
# Application files stay owned by root and read-only to the service user.
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json ./
COPY bin ./bin
COPY src ./src
COPY migrations ./migrations
USER 10001:10001
VOLUME ["/data"]
# The API (PORT); the health, readiness and metrics port of `worker` (WORKER_HTTP_PORT).
EXPOSE 8080
EXPOSE 9464
ENTRYPOINT ["node", "bin/memory-layer.js"]
CMD ["serve"]
