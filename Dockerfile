# Skiff control plane image.
#   docker build -t skiff .
#   docker run -p 15012:15012 -p 15014:15014 -p 8080:8080 -v skiff-data:/var/lib/skiff \
#     -v "$PWD/mesh:/etc/skiff/mesh:ro" -e SKIFF_DNS_NAMES=cp.mesh.internal skiff
# Configuration: mesh YAML in /etc/skiff/mesh (file), SKIFF_* variables mapped to `skiff serve`
# flags (packaging/docker-entrypoint.sh lists them), extra flags as arguments.
# test/e2e/packaging.test.ts runs these same steps in a temporary directory (there is no Docker
# engine in CI) and starts the result; keep RUN commands inside WORKDIR (relative paths), except
# the one user-and-directories line of the runtime stage.

# Build stage: all dependencies, compile to dist/ (with the CA's native ECDSA verifier, which
# needs the C compiler of the full node image; see scripts/build-native.mjs), then drop the dev
# dependencies.
FROM node:20-bookworm AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
COPY agents ./agents
RUN node scripts/build-native.mjs --require && npm run build && npm prune --omit=dev --no-audit --no-fund

# Runtime stage: production dependencies only, non-root.
FROM node:20-bookworm-slim
RUN groupadd --system --gid 10001 skiff && useradd --system --uid 10001 --gid skiff --home-dir /var/lib/skiff --shell /usr/sbin/nologin skiff && install -d -o skiff -g skiff -m 0700 /var/lib/skiff && install -d -m 0755 /etc/skiff/mesh
WORKDIR /opt/skiff
ENV NODE_ENV=production
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY examples ./examples
COPY examples/basic /etc/skiff/mesh
COPY packaging/docker-entrypoint.sh /usr/local/bin/skiff-entrypoint
USER skiff
VOLUME ["/var/lib/skiff"]
# 15012 xDS + CA (gRPC over TLS), 15014 monitoring (/metrics, /healthz, /readyz), 8080 HTTP API.
EXPOSE 15012 15014 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 CMD ["skiff-entrypoint", "healthcheck"]
ENTRYPOINT ["skiff-entrypoint"]
CMD ["serve"]
