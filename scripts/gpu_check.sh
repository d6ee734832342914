#!/usr/bin/env bash
# The GPU check: <= 5 minutes on one CUDA GPU, no network, never part of CI.
#
# On the GPU machine (Python 3.12 with its own torch, transformers, accelerate, peft, numpy,
# pandas, pyarrow, safetensors, tokenizers; no TRL, datasets, SQLAlchemy, math-verify):
#   1. beforehand, where there is a network: bash scripts/gpu_wheels.sh   (-> gpu-wheels/, ~10 MiB)
#   2. carry the repository with gpu-wheels/ to the GPU machine, then:
#        bash scripts/gpu_check.sh [WHEELS_DIR]
# It makes a virtual environment that sees the machine's packages (--system-site-packages),
# installs from WHEELS_DIR only the packages the machine lacks (each --no-deps, --no-index), then
# this project with --no-deps over the machine's torch, and runs scripts/gpu_check.py: bench_rank's
# CUDA figures for the README's three cases plus B=256 T=1024 D=3584 (exact to the float64
# oracle on response 0), and 3 VERL steps of a random-weight Qwen2.5-1.5B-shaped model in bf16
# (step / capture / rank-dynamics times, peak GPU memory). One summary table; exit 1 on any
# disagreement. Extra arguments after WHEELS_DIR go to gpu_check.py (e.g. --dry-run-cpu).
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=$(realpath "${1:-gpu-wheels}")
shift || true
if ! compgen -G "$WHEELS/*.whl" >/dev/null; then
    echo "no wheels in $WHEELS: run scripts/gpu_wheels.sh (with a network) first" >&2
    exit 2
fi
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 GRADIO_ANALYTICS_ENABLED=False
VENV=${GPU_CHECK_VENV:-/tmp/verl-gpu-check-venv}
PY=${PYTHON:-python3}
[ -x "$VENV/bin/python" ] || "$PY" -m venv --system-site-packages "$VENV"
missing=()
for whl in "$WHEELS"/*.whl; do
    dist=$(basename "$whl" | cut -d- -f1)
    "$VENV/bin/python" -c "import importlib.metadata as m, sys; m.version(sys.argv[1])" "$dist" \
        2>/dev/null || missing+=("$whl")
done
if [ ${#missing[@]} -gt 0 ]; then
    "$VENV/bin/python" -m pip install -q --no-index --no-deps "${missing[@]}"
fi
"$VENV/bin/python" -m pip install -q --no-index --no-deps --no-build-isolation -e .
"$VENV/bin/python" -c "import trl, datasets, sqlalchemy, math_verify, engine"  # fail early
exec timeout 300 "$VENV/bin/python" scripts/gpu_check.py "$@"
