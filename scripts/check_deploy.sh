#!/usr/bin/env bash
# Offline validation of the deployment files against the schemas of what runs them (make lint):
#   check_deploy.sh k8s [DIR]           kubectl kustomize DIR | kubernetes-validate --strict (unknown fields fail)
#   check_deploy.sh grafana [FILE...]   each dashboard type-checked against @grafana/schema (Grafana's own schema,
#                                       the version docker-compose.yml runs): unknown keys, bad enum values fail
#   check_deploy.sh                     both, on the shipped files
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/.venv/bin
k8s() {
  local dir=${1:-$root/deploy/k8s}
  kubectl kustomize "$dir" | "$bin/kubernetes-validate" --strict --quiet -
  echo "k8s manifests valid (strict): $dir"
}
grafana() {
  local check=$root/deploy/grafana/schema-check
  [ -d "$check/node_modules/@grafana/schema" ] || (cd "$check" && npm ci --no-audit --no-fund --silent)
  [ $# -gt 0 ] || set -- "$root"/deploy/grafana/dashboards/*.json
  node "$check/check.mjs" "$@"
}
case "${1:-all}" in
  k8s) shift; k8s "$@" ;;
  grafana) shift; grafana "$@" ;;
  all) k8s; grafana ;;
  *) echo "usage: $0 [k8s DIR | grafana FILE...]" >&2; exit 2 ;;
esac
