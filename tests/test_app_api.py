"""The public API of the served app, through gradio_client, on a real server (no worker)."""

from __future__ import annotations

import pytest
from gradio_client import Client

from tests.conftest import require

WRITES = {"/submit_run", "/cancel_run"}  # check the operator token (tests/test_security_http)
READS = {"/run_status", "/list_runs", "/monitor_refresh", "/inspector_data"}
PUBLIC = WRITES | READS


@pytest.fixture(scope="module")
def client(studio_server_no_worker):
    return Client(studio_server_no_worker.url, verbose=False)


def test_only_the_named_endpoints_are_public(client):
    api = client.view_api(return_format="dict", print_info=False)
    assert set(api["named_endpoints"]) == PUBLIC
    assert api["unnamed_endpoints"] == {}


def test_submit_then_read_status_list_and_cancel(client, studio_server_no_worker):
    run_id = client.predict(
        "grpo:\n  max_completion_length: 48\nshaping:\n  stride: 4\n"
        "run:\n  name: api-run\n  max_steps: 7\n  algorithm: grpo\n",
        api_name="/submit_run",
    )
    assert isinstance(run_id, int)
    status = client.predict(run_id, api_name="/run_status")
    assert status["id"] == run_id and status["status"] == "queued"
    assert status["name"] == "api-run" and status["total_steps"] == 7 and status["step"] == 0
    listed = {r["id"]: r for r in client.predict(api_name="/list_runs")}
    assert listed[run_id]["algorithm"] == "grpo"
    assert client.predict(run_id, api_name="/cancel_run") == "cancelled"
    assert client.predict(run_id, api_name="/run_status")["status"] == "cancelled"
    # the store the server writes is the one on disk: read it back independently
    from engine.storage import Store

    with Store(studio_server_no_worker.db_url) as store:
        run = store.get_run(run_id)
    require(run is not None, "the server's store on disk")
    assert run.config["run"]["max_steps"] == 7 and str(run.status) == "cancelled"


def test_an_invalid_config_is_refused_with_every_error(client):
    with pytest.raises(Exception) as info:
        client.predict("shaping:\n  alpha: 5\nrun:\n  max_steps: 0\n", api_name="/submit_run")
    text = str(info.value)
    assert "shaping.alpha" in text and "run.max_steps" in text
    assert client.predict(12345, api_name="/run_status")["status"] == "missing"
