"""`verl-studio deploy` against huggingface_hub talking to a fake Hub on 127.0.0.1 (HF_ENDPOINT).

Only the Hub's HTTP answers are faked: huggingface_hub itself builds every request (create the
Space, secrets, variables, bucket, volumes, preupload + commit of the files, runtime polls), so
the test sees exactly what a real deploy would send, and that the user's token never travels
into the Space. A 402/403 from the Hub must reach the user as one line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

USER_TOKEN = "hf_user_full_token_must_never_reach_the_space"
COLORS = {"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"}


def space_front_matter_problems(readme: str) -> list[str]:
    """What the Spaces config reference (docs/hub/spaces-config-reference.md) would reject or
    what this Space needs: a Docker Space on 7860 with the OAuth app."""
    import yaml

    if not readme.startswith("---\n"):
        return ["no front matter"]
    meta = yaml.safe_load(readme.split("---\n", 2)[1])
    want = {"sdk": "docker", "app_port": 7860, "hf_oauth": True}
    problems = [f"{k} must be {v!r}" for k, v in want.items() if meta.get(k) != v]
    problems += [
        f"{k} must be a colour" for k in ("colorFrom", "colorTo") if meta.get(k) not in COLORS
    ]
    if not meta.get("title") or not meta.get("emoji"):
        problems.append("title and emoji are required")
    if not 0 < len(meta.get("short_description", "")) <= 60:
        problems.append("short_description must be 1-60 characters")
    return problems


def test_readme_front_matter_is_a_valid_docker_space():
    from engine.deploy import REPO

    assert space_front_matter_problems((REPO / "README.md").read_text()) == []


class FakeHub:
    """Answers the Hub API calls a deploy makes; records them. `refuse_create` = HTTP status."""

    def __init__(self, refuse_create: int | None = None, stages=("BUILDING", "RUNNING")):
        self.refuse_create = refuse_create
        self.stages = list(stages)
        self.calls: list[tuple[str, str, bytes]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _body(self) -> bytes:
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def _send(self, status: int, obj) -> None:
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                hub.calls.append(("GET", self.path, b""))
                hub.answer(self, "GET", self.path, b"")

            def do_POST(self):
                body = self._body()
                hub.calls.append(("POST", self.path, body))
                hub.answer(self, "POST", self.path, body)

            def do_PUT(self):
                body = self._body()
                hub.calls.append(("PUT", self.path, body))
                hub.answer(self, "PUT", self.path, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, h, method: str, path: str, body: bytes) -> None:
        path = path.split("?")[0]
        if path == "/api/repos/create":
            if self.refuse_create:
                h._send(self.refuse_create, {"error": "You need a subscription to create this"})
            else:
                h._send(200, {"url": f"{self.url}/spaces/alice/studio"})
        elif path.startswith("/api/spaces/alice/studio/preupload/"):
            files = json.loads(body)["files"]
            h._send(
                200,
                {
                    "files": [
                        {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                        for f in files
                    ]
                },
            )
        elif path.startswith("/api/spaces/alice/studio/commit/"):
            h._send(
                200,
                {"commitUrl": f"{self.url}/spaces/alice/studio/commit/1", "commitOid": "a" * 40},
            )
        elif path == "/api/spaces/alice/studio/runtime":
            stage = self.stages.pop(0) if len(self.stages) > 1 else self.stages[0]
            h._send(200, {"stage": stage, "hardware": {"current": "cpu-basic"}})
        elif path == "/api/validate-yaml":
            problems = space_front_matter_problems(json.loads(body)["content"])
            h._send(400 if problems else 200, {"error": "; ".join(problems), "warnings": []})
        elif path.startswith("/api/buckets/"):
            h._send(200, {"url": f"{self.url}/buckets/{path.removeprefix('/api/buckets/')}"})
        elif path.startswith("/api/spaces/alice/studio/"):
            h._send(200, {})
        else:  # e.g. repo_info of a Space that does not exist
            h._send(404, {"error": f"Repository not found ({method} {path})"})

    def __enter__(self) -> FakeHub:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    def paths(self, method: str) -> list[str]:
        return [p.split("?")[0] for m, p, _ in self.calls if m == method]

    def body_of(self, method: str, path: str) -> bytes:
        return b"".join(b for m, p, b in self.calls if m == method and p.split("?")[0] == path)


@pytest.fixture
def online(monkeypatch):
    """huggingface_hub allowed to make requests (the suite runs with HF_HUB_OFFLINE=1)."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


def _api(hub: FakeHub):
    from huggingface_hub import HfApi

    return HfApi(endpoint=hub.url, token=USER_TOKEN)


def test_deploy_creates_configures_uploads_and_waits(online):
    from engine.deploy import ADMIN_SECRET, SNAPSHOT_DIR, deploy_space

    with FakeHub() as hub:
        result = deploy_space(_api(hub), "alice/studio", bucket="alice/runs", poll_s=0.01)

    assert result.stage == "RUNNING"
    assert len(result.admin_token) >= 32
    create = json.loads(hub.body_of("POST", "/api/repos/create"))
    assert (create["type"], create["sdk"], create["name"]) == ("space", "docker", "studio")
    secret = json.loads(hub.body_of("POST", "/api/spaces/alice/studio/secrets"))
    assert secret == {"key": ADMIN_SECRET, "value": result.admin_token}
    variable = json.loads(hub.body_of("POST", "/api/spaces/alice/studio/variables"))
    assert (variable["key"], variable["value"]) == ("VERL_STUDIO_SNAPSHOTS", SNAPSHOT_DIR)
    volumes = json.loads(hub.body_of("PUT", "/api/spaces/alice/studio/volumes"))["volumes"]
    assert volumes == [{"type": "bucket", "source": "alice/runs", "mountPath": "/data"}]
    assert any(p.startswith("/api/buckets/") for p in hub.paths("POST"))
    # the files the image needs, and nothing from the developer's machine
    commit = hub.body_of("POST", "/api/spaces/alice/studio/commit/main").decode()
    uploaded = {
        json.loads(line)["value"]["path"]
        for line in commit.splitlines()
        if json.loads(line)["key"] == "file"
    }
    for needed in (
        "README.md",
        "Dockerfile",
        "pyproject.toml",
        "constraints.txt",
        "scripts/space/install.sh",
        "scripts/space/start.sh",
        "engine/spaces.py",
        "app/main.py",
        "recipes/demo-cpu.yaml",
        "assets/demo-model/config.json",
        "assets/seed-runs.jsonl.gz",
    ):
        assert needed in uploaded, needed
    assert not [p for p in uploaded if p.startswith((".venv", "tests/", ".git/")) or ".pyc" in p]
    # the user's own token authenticates the calls but is never sent as a value into the Space
    for method, path, body in hub.calls:
        assert USER_TOKEN.encode() not in body, (method, path)


@pytest.mark.parametrize("status", [402, 403])
def test_deploy_refused_by_hub_is_one_line(tmp_path, status):
    """A 402 (no paid plan) or 403 (no write right) from the Hub: exit 1, one line, no trace."""
    with FakeHub(refuse_create=status) as hub:
        env = {
            **os.environ,
            "HF_ENDPOINT": hub.url,
            "HF_TOKEN": USER_TOKEN,
            "HF_HUB_OFFLINE": "0",
            "HF_HOME": str(tmp_path / "hf"),
        }
        proc = subprocess.run(
            [sys.executable, "-m", "app.cli", "deploy", "--space", "alice/studio"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert f"HTTP {status}" in lines[0]
    assert ("paid plan" if status == 402 else "write token") in lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert hub.paths("POST") == ["/api/repos/create"]  # nothing else was attempted


def test_deploy_build_error_is_one_line(online):
    from engine.deploy import DeployError, deploy_space

    with FakeHub(stages=("BUILDING", "BUILD_ERROR")) as hub, pytest.raises(DeployError) as err:
        deploy_space(_api(hub), "alice/studio", poll_s=0.01)
    assert "BUILD_ERROR" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("bad", ["alice", "alice/../x", "/etc/passwd", "a/b/c", ""])
def test_deploy_refuses_malformed_space_ids(bad):
    from engine.deploy import DeployError, check_ids

    with pytest.raises(DeployError, match="--space must look like USER/NAME"):
        check_ids(bad, None)
