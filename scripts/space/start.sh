#!/usr/bin/env bash
# The Space image's start command (the Dockerfile's CMD; check_image.sh runs it too).
# Binds 0.0.0.0:7860 as a Space needs; VERL_STUDIO_HOST / PORT override that (the check binds
# loopback). Spaces mode (SYSTEM=spaces, owner login, seeded runs) follows from SPACE_ID.
set -euo pipefail
exec verl-studio serve --host "${VERL_STUDIO_HOST:-0.0.0.0}" --port "${PORT:-7860}"
