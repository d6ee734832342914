#!/usr/bin/env bash
# The Space image's install steps, in ONE place: the Dockerfile's RUN lines call this script, and
# scripts/space/check_image.sh runs the same two steps in a clean virtual environment.
#   install.sh torch   CPU torch from PyTorch's CPU wheel index, first, so nothing pulls CUDA torch
#   install.sh app     the package (engine, app, embedded model, seed runs) with pinned dependencies
# Python is whatever `python` is on PATH (the image's venv, or the check's). The torch version is
# constraints.txt's pin; VERL_STUDIO_TORCH_INDEX overrides the wheel index.
set -euo pipefail
cd "$(dirname "$0")/../.."
torch_pin=$(grep -E '^torch==' constraints.txt)
case "${1:-}" in
  torch)
    python -m pip install --upgrade "pip>=24"
    python -m pip install --index-url "${VERL_STUDIO_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}" "$torch_pin"
    ;;
  app)
    python -m pip install -c constraints.txt "$torch_pin" .
    ;;
  *)
    echo "usage: scripts/space/install.sh torch|app" >&2
    exit 2
    ;;
esac
