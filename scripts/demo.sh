#!/usr/bin/env bash
# Quick start, first command: installs dependencies, builds, and runs the main job: the flagship
# example (list_lru reparenting, i_pages -> shadow_nodes.xa) and its lockgraph report.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh >/dev/null
if [ -x build/examples/list_lru_reparent ] && [ -x build/analyzer/lockgraph ]; then
  exec build/analyzer/lockgraph run -- build/examples/list_lru_reparent
fi
exec build/graph/lockgraph-engine-demo
