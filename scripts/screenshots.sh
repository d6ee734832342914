#!/usr/bin/env bash
# Re-takes the README's screenshots: runs the browser tests that take them (into a scratch
# artifacts folder) and copies each screenshot the README shows into docs/screenshots/.
set -euo pipefail
cd "$(dirname "$0")/.."

# <file the tests write under the artifacts folder>  <name in docs/screenshots/>
SHOTS=(
  "dashboard/monitor.png monitor.png"
  "ux/link-to-one-response.png inspector.png"
  "dashboard/launch-invalid.png launch-invalid.png"
  "health-tied.png health.png"
  "answer-audit.png answer-audit.png"
  "part2-analysis.png analysis.png"
)

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
VERL_STUDIO_ARTIFACTS=$scratch bash scripts/test.sh -q tests/test_browser_dashboard.py \
  tests/test_browser_health.py tests/test_browser_audit.py tests/test_browser_analysis.py \
  tests/test_browser_ux.py
mkdir -p docs/screenshots
for pair in "${SHOTS[@]}"; do
  read -r taken shown <<<"$pair"
  cp "$scratch/$taken" "docs/screenshots/$shown"
  echo "docs/screenshots/$shown <- $taken"
done
