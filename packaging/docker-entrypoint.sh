#!/bin/sh
# Entry point of the control plane image (Dockerfile). Configuration comes from files (the mesh
# YAML in $SKIFF_CONFIG_DIR, an optional Istio MeshConfig file) and from these environment
# variables, each mapped to a `skiff serve` flag; arguments after the image name are appended:
#
#   SKIFF_HOME            install dir of the package           /opt/skiff
#   SKIFF_DATA_DIR        --data-dir (the volume)               /var/lib/skiff
#   SKIFF_CONFIG_DIR      --config-dir (mesh YAML)              /etc/skiff/mesh
#   SKIFF_LISTEN_ADDRESS  --listen-address                      0.0.0.0
#   SKIFF_GRPC_PORT       --grpc-port (xDS + CA, TLS)           15012
#   SKIFF_MONITORING_PORT --monitoring-port (/readyz, /metrics) 15014
#   SKIFF_API_PORT        --api-port (HTTP API)                 8080
#   SKIFF_TRUST_DOMAIN    --trust-domain                        cluster.local
#   SKIFF_DNS_NAMES       --dns-name for each (comma-separated) (none)
#   SKIFF_IPS             --ip for each (comma-separated)       (none)
#   SKIFF_MESH_CONFIG     --mesh-config (file)                  (none)
#   SKIFF_CA_DIR          --ca-dir (Istio cacerts layout)       (none)
#   SKIFF_LOG_LEVEL       log level                             info
#
# `skiff-entrypoint healthcheck` is the image's HEALTHCHECK: GET /readyz on the monitoring port.
# Any other first argument that is not a flag runs that skiff subcommand, for example
# `docker run IMAGE token create --data-dir /var/lib/skiff --namespace shop --service-account web`.
set -eu

home="${SKIFF_HOME:-/opt/skiff}"
main="$home/dist/src/cli/main.js"

if [ "${1:-}" = "healthcheck" ]; then
  exec node -e '
    const url = `http://127.0.0.1:${process.env.SKIFF_MONITORING_PORT || 15014}/readyz`;
    fetch(url, { signal: AbortSignal.timeout(2500) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1));'
fi
if [ "$#" -gt 0 ] && [ "${1#-}" = "$1" ] && [ "$1" != "serve" ]; then
  exec node "$main" "$@"
fi
if [ "${1:-}" = "serve" ]; then shift; fi

set -- serve \
  --data-dir "${SKIFF_DATA_DIR:-/var/lib/skiff}" \
  --config-dir "${SKIFF_CONFIG_DIR:-/etc/skiff/mesh}" \
  --listen-address "${SKIFF_LISTEN_ADDRESS:-0.0.0.0}" \
  --grpc-port "${SKIFF_GRPC_PORT:-15012}" \
  --monitoring-port "${SKIFF_MONITORING_PORT:-15014}" \
  --api-port "${SKIFF_API_PORT:-8080}" \
  --trust-domain "${SKIFF_TRUST_DOMAIN:-cluster.local}" \
  "$@"
if [ -n "${SKIFF_MESH_CONFIG:-}" ]; then set -- "$@" --mesh-config "$SKIFF_MESH_CONFIG"; fi
if [ -n "${SKIFF_CA_DIR:-}" ]; then set -- "$@" --ca-dir "$SKIFF_CA_DIR"; fi
if [ -n "${SKIFF_LOG_LEVEL:-}" ]; then set -- "$@" --log-level "$SKIFF_LOG_LEVEL"; fi
old_ifs="$IFS"
IFS=','
for name in ${SKIFF_DNS_NAMES:-}; do if [ -n "$name" ]; then set -- "$@" --dns-name "$name"; fi; done
for ip in ${SKIFF_IPS:-}; do if [ -n "$ip" ]; then set -- "$@" --ip "$ip"; fi; done
IFS="$old_ifs"
exec node "$main" "$@"
