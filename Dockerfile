# syntax=docker/dockerfile:1
# The GPU host's images, built from the repository root (docs/deploy.md, "Images"):
#   docker build -t dimoo-orchestrator:<tag> .                          the orchestrator (default target)
#   docker build --target engine-builder -t dimoo-engine-builder:<tag> \
#     --build-arg TENSORRT_TAG=<yy.mm> .                                 the one-off engine build (trtexec)
# The orchestrator runs beside NVIDIA's stock Triton container (nvcr.io/nvidia/tritonserver:<yy.mm>-py3),
# the engine builder on the TensorRT container of the SAME <yy.mm>: a plan only loads in the TensorRT that
# built it (model-repository/README.md, "Version lock").
#
# Why tsx at run time instead of a compiled build: the sources use bundler-style imports (no file
# extensions), which Node cannot load as tsc output, and a bundle would move the files that
# gpu-backend/src/triton/proto.ts finds next to itself (proto/triton/*.proto). tsx transpiles each module
# once at start (about a second, against minutes of engine loading), so the image runs exactly the sources
# the tests ran; it is a production dependency for that reason.

ARG NODE_IMAGE=node:20-bookworm-slim
ARG TENSORRT_TAG=26.02

# ---- production dependencies only (no wrangler, vitest, workers types, playwright, buf) ----
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
# --ignore-scripts: no install script is needed at run time (.npmrc already skips onnxruntime's CUDA download).
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && rm -rf node_modules/onnxruntime-node/bin/napi-v*/darwin node_modules/onnxruntime-node/bin/napi-v*/win32 \
 && npm cache clean --force

# ---- the application: sources and protocol files, owned by root, read-only for the runtime user ----
FROM ${NODE_IMAGE} AS app
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json tsconfig.json ./
COPY proto ./proto
COPY gpu-backend/src ./gpu-backend/src

# ---- one-off engine build: our ONNX writer + trtexec from the TensorRT release matching Triton ----
FROM nvcr.io/nvidia/tensorrt:${TENSORRT_TAG}-py3 AS engine-builder
COPY --from=app /usr/local/bin/node /usr/local/bin/node
COPY --from=app /app /app
WORKDIR /app
ENV NODE_ENV=production TRTEXEC=/usr/src/tensorrt/bin/trtexec
# Runs as the invoking user (docker run --user / securityContext), writing to the mounted engine volume.
USER 1000:1000
ENTRYPOINT ["node", "--import", "tsx", "gpu-backend/src/cli/build-engines.ts"]
CMD ["--help"]

# ---- the orchestrator (default target) ----
FROM app AS orchestrator
ENV NODE_ENV=production \
    ORCHESTRATOR_HOST=0.0.0.0 \
    ORCHESTRATOR_PORT=50051 \
    METRICS_HOST=0.0.0.0 \
    METRICS_PORT=9464 \
    MODEL_REPOSITORY=/engines/repository \
    DRAIN_GRACE_MS=120000
# The `node` user of the official image (uid 1000); nothing in /app is writable by it.
USER node
EXPOSE 50051 9464
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.METRICS_PORT||9464)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Node is PID 1 and handles SIGTERM itself: it drains (DRAIN_GRACE_MS), then exits 0.
STOPSIGNAL SIGTERM
CMD ["node", "--import", "tsx", "gpu-backend/src/cli/start-orchestrator.ts"]
