#!/usr/bin/env bash
# Proves the Space image without Docker: the Dockerfile's install steps (scripts/space/install.sh)
# in a clean virtual environment built from a copy of the files the image's `COPY . .` takes, then
# its start command (scripts/space/start.sh) in Spaces mode, checking that the app answers on its
# port and serves the seeded demo runs. The image binds 0.0.0.0; this check binds 127.0.0.1.
# Prints the time each part took. Run from anywhere; needs python3.11 and pip's index/cache.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3.11}
work=$(mktemp -d "${TMPDIR:-/tmp}/verl-image.XXXXXX")
server=""
cleanup() {
  if [ -n "$server" ]; then
    kill -TERM -- "-$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
t0=$(date +%s)

# The build context: what git tracks or would track (the .dockerignore'd folders are untracked).
mkdir -p "$work/app"
git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - | tar -xf - -C "$work/app"
"$PY" -m venv "$work/venv"
export PATH="$work/venv/bin:$PATH" PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_RETRIES=0
(cd "$work/app" && bash scripts/space/install.sh torch && bash scripts/space/install.sh app) \
  >"$work/install.log" 2>&1 || { tail -30 "$work/install.log" >&2; echo "check_image: install failed" >&2; exit 1; }
t1=$(date +%s)

# Start as the Space does (its runtime variables; SYSTEM unset: the app sets it), on loopback.
port=$(python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
(
  cd "$work/app"
  unset SYSTEM
  export VERL_STUDIO_HOST=127.0.0.1 PORT=$port VERL_STUDIO_HOME="$work/data" HOME="$work/home" \
    HF_HOME="$work/home/.cache/huggingface" HF_HUB_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False \
    OMP_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false \
    SPACE_ID=check/verl-studio SPACE_AUTHOR_NAME=check SPACE_HOST="127.0.0.1:$port" \
    OAUTH_CLIENT_ID=check OAUTH_CLIENT_SECRET="$(python -c 'import secrets; print(secrets.token_hex(16))')" \
    OAUTH_SCOPES="openid profile" OPENID_PROVIDER_URL=http://127.0.0.1:9
  exec setsid bash scripts/space/start.sh
) >"$work/serve.log" 2>&1 &
server=$!

if ! python - "$port" <<'PY'
import json, sys, time, urllib.request

url = f"http://127.0.0.1:{sys.argv[1]}/"
deadline = time.monotonic() + 240
while True:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            page = r.read().decode()
        break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit("check_image: the app did not answer on its port within 240 s")
        time.sleep(1)
assert "VERL Studio" in page, "the page is not the dashboard"
from gradio_client import Client
runs = Client(url, verbose=False).predict(api_name="/list_runs")
done = [r for r in runs if r["status"] == "completed"]
assert {r["algorithm"] for r in done} >= {"verl", "grpo"}, f"no seeded runs: {runs}"
print(f"check_image: {url} answers; seeded runs: {json.dumps([r['name'] for r in done])}")
PY
then
  tail -40 "$work/serve.log" >&2
  exit 1
fi
t2=$(date +%s)
echo "check_image: clean-venv install $((t1 - t0)) s, start and answer $((t2 - t1)) s, total $((t2 - t0)) s"
echo "check_image: CPU time (user, system) of this shell and of its children:"
times
