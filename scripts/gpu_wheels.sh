#!/usr/bin/env bash
# Download, beforehand and with a network, the wheels that scripts/gpu_check.sh installs on the GPU
# machine (Python 3.12, Linux x86_64; it has torch, transformers, accelerate, peft, numpy, pandas,
# pyarrow, safetensors and tokenizers, but no TRL, datasets, SQLAlchemy or math-verify, and no
# network). Only the engine's missing packages, at this repository's pinned versions
# (constraints.txt), each without its dependencies: about 10 MiB in all (limit 64 MiB).
#   bash scripts/gpu_wheels.sh [DIR]      # default DIR: gpu-wheels (git-ignored)
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-gpu-wheels}
PY=${PYTHON:-.venv/bin/python}
PACKAGES=(
    trl datasets dill multiprocess xxhash httpx httpcore certifi h11 anyio idna sniffio
    sqlalchemy greenlet math-verify latex2sympy2_extended antlr4-python3-runtime
    platformdirs threadpoolctl pytz setuptools wheel
)
mkdir -p "$DIR"
pins=()
for p in "${PACKAGES[@]}"; do
    pin=$(grep -i -E "^${p//_/[-_]}==" constraints.txt | head -1 || true)
    pins+=("${pin:-$p}")
done
"$PY" -m pip download --quiet --no-deps --only-binary=:all: --dest "$DIR" \
    --python-version 3.12 --implementation cp --abi cp312 \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform any "${pins[@]}"
du -sh "$DIR"
ls "$DIR"
