# Skiff control plane image (first draft; issue 7 proves these steps without a Docker engine).
# Multi-stage: build with dev dependencies, run with production dependencies only, as non-root.
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
COPY agents ./agents
RUN npm run build

FROM node:20-bookworm-slim
WORKDIR /opt/skiff
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /src/dist ./dist
COPY examples ./examples
RUN useradd --system --uid 10001 --home /var/lib/skiff skiff && mkdir -p /var/lib/skiff /etc/skiff/mesh && chown skiff /var/lib/skiff
USER skiff
VOLUME ["/var/lib/skiff"]
# 15012 xDS + CA (TLS), 15014 monitoring, 8080 HTTP API (later issue)
EXPOSE 15012 15014 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["node", "-e", "fetch('http://127.0.0.1:15014/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "dist/src/cli/main.js"]
CMD ["serve", "--data-dir", "/var/lib/skiff", "--config-dir", "/etc/skiff/mesh"]
