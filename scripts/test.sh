#!/usr/bin/env bash
# The test command behind `make test`: system packages, services, lint, then the whole suite under
# an overall timeout. Run from the repository root with .venv installed.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the suite drives for real: a browser for the app, PostgreSQL for the store.
need=()
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian packages: ${need[*]}"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "the test suite needs these Debian packages: ${need[*]} (apt-get install them as root)" >&2
    exit 2
  fi
fi

export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export GRADIO_ANALYTICS_ENABLED=False OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false
export VERL_STUDIO_ARTIFACTS="${VERL_STUDIO_ARTIFACTS:-$PWD/test-artifacts}"
mkdir -p "$VERL_STUDIO_ARTIFACTS"

# A throwaway PostgreSQL cluster on a free loopback port, stopped on exit.
eval "$(bash scripts/postgres.sh start)"
trap 'bash scripts/postgres.sh stop "$PG_DIR" || true' EXIT

.venv/bin/ruff check .
.venv/bin/ruff format --check .
timeout --kill-after=60 "${VERL_STUDIO_TEST_TIMEOUT:-4800}" .venv/bin/pytest -p no:cacheprovider "$@"

# The Space image's install and start steps in a clean virtual environment (Docker is not
# needed): after the whole suite, not after a targeted run (`scripts/test.sh tests/test_x.py`).
if [ $# -eq 0 ] || [ "${VERL_STUDIO_IMAGE_CHECK:-0}" = 1 ]; then
  timeout --kill-after=30 "${VERL_STUDIO_IMAGE_CHECK_TIMEOUT:-1200}" bash scripts/space/check_image.sh
fi
