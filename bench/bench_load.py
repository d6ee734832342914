"""8 API clients polling a served app while a run trains and writes: errors and latency.

    python bench/bench_load.py [--seconds 60] [--clients 8] [--quick]

Starts `verl-studio serve` (with its worker) on a fresh data root, queues a demo run that keeps
writing steps, then `--clients` gradio_client clients each poll /run_status, /list_runs, the
monitor's refresh (/monitor_refresh) and the inspector's data (/inspector_data) in a loop (every
request bounded by a timeout) for `--seconds`. Prints requests, errors, "database is locked" in
the server's log, and p50 / p95 / max latency in milliseconds per endpoint. The suite runs the same
`poll_under_load` for 15 s (tests/test_faults.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


ENDPOINTS = ("/run_status", "/list_runs", "/monitor_refresh", "/inspector_data")


def _check(endpoint: str, answer, run_id: int) -> int | None:
    """The step an answer shows (None when it has none); AssertionError on a wrong answer."""
    if endpoint == "/list_runs":
        assert any(r["id"] == run_id for r in answer), answer
        return None
    assert answer["id"] == run_id and answer.get("status") != "missing", answer
    if endpoint == "/run_status":
        return int(answer.get("step") or 0)
    if endpoint == "/monitor_refresh":
        assert f"#{run_id} " in answer["status"], answer["status"]
        return int(answer["signature"][0][2]) if answer["signature"] else None
    return answer["step"]  # /inspector_data: the latest step with recorded responses


def poll_under_load(url: str, run_id: int, seconds: float, clients: int = 8) -> dict:
    """Each client polls every endpoint of `ENDPOINTS` about run_id in turn (the monitor's
    refresh and the inspector through their read-only API twins) until `seconds` pass; returns
    {"latencies_ms": {endpoint: [...]}, "errors": [...], "steps_seen": {endpoint: set of steps}}."""
    from gradio_client import Client

    latencies: dict[str, list[float]] = {e: [] for e in ENDPOINTS}
    steps: dict[str, set[int]] = {e: set() for e in ENDPOINTS}
    errors: list[str] = []
    lock = threading.Lock()

    def client_loop() -> None:
        try:
            client = Client(url, verbose=False, httpx_kwargs={"timeout": 30})
        except Exception as exc:  # noqa: BLE001 - counted, not raised
            with lock:
                errors.append(f"connect: {exc}")
            return
        deadline = time.monotonic() + seconds  # polling time, after connecting
        while time.monotonic() < deadline:
            for endpoint in ENDPOINTS:
                args = () if endpoint == "/list_runs" else (run_id,)
                t0 = time.perf_counter()
                try:
                    answer = client.predict(*args, api_name=endpoint)
                    step = _check(endpoint, answer, run_id)
                except Exception as exc:  # noqa: BLE001
                    with lock:
                        errors.append(f"{endpoint}: {exc!r}"[:500])
                    continue
                with lock:
                    latencies[endpoint].append((time.perf_counter() - t0) * 1000)
                    if step is not None:
                        steps[endpoint].add(step)

    threads = [threading.Thread(target=client_loop, name=f"client-{i}") for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 120)
    return {"latencies_ms": latencies, "errors": errors, "steps_seen": steps}


def locked_anywhere(store, data: Path, run_id: int) -> bool:
    """ "database is locked" in the training process's log, the run's error or its events."""
    log_file = data / "logs" / f"run-{run_id}.log"
    texts = [log_file.read_text(errors="replace") if log_file.is_file() else ""]
    run = store.get_run(run_id)
    texts += [run.error or "", *(e["message"] for e in store.events(run_id))]
    return any("database is locked" in t for t in texts)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def main(argv: list[str] | None = None) -> int:
    from engine.runs import service
    from engine.runs.admission import AccessPolicy
    from engine.storage import Store
    from tests.fixtures.server import run_server
    from tests.fixtures.training import tiny_config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="10 s (make bench)")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds = 10.0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "home"
        with run_server(data, worker=True) as server, Store(server.db_url) as store:
            cfg = tiny_config("run.max_steps=2000", "run.eval_every=0")
            run_id = service.submit(store, cfg, policy=AccessPolicy.command_line())
            while store.latest_step(run_id) < 1:  # bounded by the run's own failure
                run = store.get_run(run_id)
                if run.status.finished:
                    print(f"the run stopped before writing: {run.error}")
                    return 1
                time.sleep(0.5)
            first = store.latest_step(run_id)
            result = poll_under_load(server.url, run_id, args.seconds, args.clients)
            last = store.latest_step(run_id)
            locked = locked_anywhere(store, data, run_id)
            service.cancel(store, run_id)
    lat = result["latencies_ms"]
    total = sum(len(v) for v in lat.values())
    print(
        f"{args.clients} clients x {args.seconds:.0f} s while the run wrote steps {first}..{last}: "
        f"{total} requests, {len(result['errors'])} errors, database locked: {locked}"
    )
    for endpoint, values in lat.items():
        print(
            f"  {endpoint:<17} {len(values):>5} requests  p50 {percentile(values, 50):>6.0f} ms  "
            f"p95 {percentile(values, 95):>6.0f} ms  max {max(values, default=float('nan')):>6.0f} ms"
        )
    for error in result["errors"][:5]:
        print("  error:", error)
    return 0 if not result["errors"] and not locked else 1


if __name__ == "__main__":
    sys.exit(main())
