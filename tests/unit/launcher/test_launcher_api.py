"""The launcher's HTTP contract: every endpoint and every error code, with a fake spawner."""

import signal
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from fma.launcher.api import INSTANCES_PATH, OPTION_COUNT_MAX, REQUEST_BODY_BYTES_MAX
from tests.unit.launcher.launcher_fakes import REJECTED_OPTION, FakeSpawner

STUB_OPTIONS = ["--model", "m", "--port", "8100"]


def create(client: TestClient, instance_id: str | None = None, **body: object) -> dict[str, object]:
    payload = {"options": STUB_OPTIONS, **body}
    if instance_id is None:
        response = client.post(INSTANCES_PATH, json=payload)
    else:
        response = client.put(f"{INSTANCES_PATH}/{instance_id}", json=payload)
    assert response.status_code == 201, response.text
    result: dict[str, object] = response.json()
    return result


def wait_until_status(client: TestClient, instance_id: str, status: str) -> dict[str, object]:
    """Bounded poll of the instance's status (exit handling runs on the app's loop)."""
    for _ in range(200):
        state: dict[str, object] = client.get(f"{INSTANCES_PATH}/{instance_id}").json()
        if state["status"] == status:
            return state
        client.get("/health")  # yields to the app's loop
    raise AssertionError(f"{instance_id} never became {status}: {state}")


# --- service endpoints ------------------------------------------------------------------------


def test_root_names_the_service_and_its_endpoints(client: TestClient) -> None:
    body = client.get("/").json()
    assert body["name"] == "FMA launcher"
    assert body["engine"] == "fake"
    assert {INSTANCES_PATH, f"{INSTANCES_PATH}/{{instance_id}}/log", "/health"} <= set(
        body["endpoints"]
    )


def test_health_is_ok(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "OK"}


# --- create --------------------------------------------------------------------------------


def test_post_creates_a_running_instance_with_a_uuid4_id(
    client: TestClient, spawner: FakeSpawner
) -> None:
    state = create(client)
    assert uuid.UUID(str(state["instance_id"])).version == 4
    assert state["status"] == "running"
    assert state["revision"] == 1
    assert state["options"] == STUB_OPTIONS
    assert state["pid"] == spawner.processes[str(state["instance_id"])].pid
    assert "gpu_uuids" not in state and "exit_code" not in state  # nulls are omitted


def test_put_creates_an_instance_under_the_given_id(client: TestClient) -> None:
    state = create(client, "Iabc_-9i")
    assert state["instance_id"] == "Iabc_-9i"
    assert client.get(f"{INSTANCES_PATH}/Iabc_-9i").json() == state


def test_options_string_is_split_like_a_shell_and_never_run_by_one(
    client: TestClient, spawner: FakeSpawner
) -> None:
    state = create(client, "s1", options="--model m --served-model-name 'a b' --x \"$(rm -rf /)\"")
    expected = ["--model", "m", "--served-model-name", "a b", "--x", "$(rm -rf /)"]
    assert state["options"] == expected
    assert spawner.processes["s1"].spec.options == tuple(expected)


def test_gpu_uuids_become_cuda_visible_devices_in_the_order_given(
    client: TestClient, spawner: FakeSpawner
) -> None:
    state = create(
        client,
        "g1",
        gpu_uuids=["GPU-cccc", "GPU-aaaa"],
        env_vars={"CUDA_VISIBLE_DEVICES": "7", "HF_HOME": "/tmp/hf"},
    )
    assert state["env_vars"] == {"CUDA_VISIBLE_DEVICES": "3,0", "HF_HOME": "/tmp/hf"}
    assert spawner.processes["g1"].spec.env["CUDA_VISIBLE_DEVICES"] == "3,0"
    assert state["gpu_uuids"] == ["GPU-cccc", "GPU-aaaa"]


def test_annotations_are_returned_untouched(client: TestClient) -> None:
    annotations = {"isc-name": "llama", "inference-port": "8100"}
    assert create(client, "a1", annotations=annotations)["annotations"] == annotations


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_an_unknown_gpu_uuid_is_an_input_error_and_starts_nothing(
    client: TestClient, spawner: FakeSpawner, method: str
) -> None:
    path = INSTANCES_PATH if method == "POST" else f"{INSTANCES_PATH}/x1"
    response = client.request(
        method, path, json={"options": STUB_OPTIONS, "gpu_uuids": ["GPU-aaaa", "GPU-zzzz"]}
    )
    assert response.status_code == 422
    assert "GPU-zzzz" in response.json()["detail"]
    assert spawner.processes == {}
    assert client.get(INSTANCES_PATH).json()["revision"] == 0


def test_options_the_engine_rejects_are_an_input_error(
    client: TestClient, spawner: FakeSpawner
) -> None:
    response = client.put(f"{INSTANCES_PATH}/r1", json={"options": [REJECTED_OPTION]})
    assert response.status_code == 422
    assert REJECTED_OPTION in response.json()["detail"]
    assert spawner.processes == {}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="options-missing"),
        pytest.param({"options": 7}, id="options-not-a-list"),
        pytest.param({"options": "--model 'unclosed"}, id="options-unbalanced-quote"),
        pytest.param({"options": ["a\0b"]}, id="option-with-nul"),
        pytest.param({"options": ["x"] * (OPTION_COUNT_MAX + 1)}, id="too-many-options"),
        pytest.param({"options": ["x" * 8193]}, id="option-too-long"),
        pytest.param({"options": [], "surprise": 1}, id="unknown-field"),
        pytest.param({"options": [], "gpu_uuids": ["GPU-aaaa", "GPU-aaaa"]}, id="repeated-gpu"),
        pytest.param({"options": [], "gpu_uuids": ["GPU a"]}, id="gpu-uuid-with-space"),
        pytest.param({"options": [], "env_vars": {"1ABC": "x"}}, id="env-name-leading-digit"),
        pytest.param({"options": [], "env_vars": {"A-B": "x"}}, id="env-name-with-dash"),
        pytest.param({"options": [], "env_vars": {"": "x"}}, id="env-name-empty"),
        pytest.param({"options": [], "env_vars": {"A": "x\0y"}}, id="env-value-with-nul"),
        pytest.param({"options": [], "env_vars": {"A": 1}}, id="env-value-not-a-string"),
        pytest.param({"options": [], "annotations": {"k": "v" * 8193}}, id="annotation-too-long"),
    ],
)
def test_invalid_bodies_are_rejected_with_422(
    client: TestClient, spawner: FakeSpawner, body: dict[str, object]
) -> None:
    response = client.put(f"{INSTANCES_PATH}/v1", json=body)
    assert response.status_code == 422, response.text
    assert spawner.processes == {}


def test_a_body_that_is_not_json_is_rejected_with_422(client: TestClient) -> None:
    response = client.post(
        INSTANCES_PATH, content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


@pytest.mark.parametrize(
    "instance_id",
    [
        pytest.param(".hidden", id="leading-dot"),
        pytest.param("a b", id="space"),
        pytest.param("x" * 129, id="too-long"),
        pytest.param("watch", id="reserved"),
    ],
)
def test_invalid_instance_ids_are_rejected_with_422(client: TestClient, instance_id: str) -> None:
    response = client.put(f"{INSTANCES_PATH}/{instance_id}", json={"options": STUB_OPTIONS})
    assert response.status_code == 422


def test_an_oversized_body_is_refused_before_it_is_read(client: TestClient) -> None:
    response = client.post(
        INSTANCES_PATH,
        content=b" " * (REQUEST_BODY_BYTES_MAX + 1),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json() == {"detail": f"request body larger than {REQUEST_BODY_BYTES_MAX} bytes"}


def test_a_body_without_a_length_is_refused(client: TestClient) -> None:
    response = client.post(
        INSTANCES_PATH,
        content=iter([b'{"options": []}']),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 411
    assert response.json() == {"detail": "a request body needs a Content-Length"}


def test_put_of_an_existing_id_is_409_even_when_it_is_stopped(
    client: TestClient, spawner: FakeSpawner
) -> None:
    create(client, "d1")
    assert client.put(f"{INSTANCES_PATH}/d1", json={"options": STUB_OPTIONS}).status_code == 409
    spawner.processes["d1"].crash(1)
    wait_until_status(client, "d1", "stopped")
    response = client.put(f"{INSTANCES_PATH}/d1", json={"options": STUB_OPTIONS})
    assert response.status_code == 409
    assert "already exists" in response.json()["detail"]


def test_an_id_is_free_again_after_delete(client: TestClient) -> None:
    create(client, "d2")
    assert client.delete(f"{INSTANCES_PATH}/d2").status_code == 200
    assert create(client, "d2")["instance_id"] == "d2"


def test_the_instance_limit_answers_503(client: TestClient) -> None:
    for n in range(4):
        create(client, f"n{n}")
    response = client.put(f"{INSTANCES_PATH}/n4", json={"options": STUB_OPTIONS})
    assert response.status_code == 503
    assert "limit" in response.json()["detail"]


def test_a_process_the_os_refuses_is_a_500_and_leaves_no_record(
    client: TestClient, spawner: FakeSpawner
) -> None:
    spawner.fail_spawn = True
    response = client.put(f"{INSTANCES_PATH}/f1", json={"options": STUB_OPTIONS})
    assert response.status_code == 500
    assert "fork" in response.json()["detail"]
    assert client.get(f"{INSTANCES_PATH}/f1").status_code == 404


# --- read ----------------------------------------------------------------------------------


def test_get_of_an_unknown_id_is_404(client: TestClient) -> None:
    response = client.get(f"{INSTANCES_PATH}/nope")
    assert response.status_code == 404
    assert response.json() == {"detail": "instance 'nope' not found"}


def test_list_with_detail_counts_running_and_stopped(
    client: TestClient, spawner: FakeSpawner
) -> None:
    create(client, "l1")
    create(client, "l2")
    spawner.processes["l1"].crash(3)
    wait_until_status(client, "l1", "stopped")
    body = client.get(INSTANCES_PATH).json()
    assert body["total_instances"] == 2
    assert body["running_instances"] == 1
    assert body["revision"] == 3
    assert [s["instance_id"] for s in body["instances"]] == ["l1", "l2"]
    assert body == client.get(INSTANCES_PATH, params={"detail": "true"}).json()


def test_list_without_detail_gives_ids(client: TestClient) -> None:
    create(client, "l1")
    body = client.get(INSTANCES_PATH, params={"detail": "false"}).json()
    assert body == {"revision": 1, "instance_ids": ["l1"], "count": 1}


def test_list_with_a_bad_detail_value_is_422(client: TestClient) -> None:
    assert client.get(INSTANCES_PATH, params={"detail": "maybe"}).status_code == 422


def test_a_crash_is_reported_as_stopped_with_its_exit_code(
    client: TestClient, spawner: FakeSpawner
) -> None:
    create(client, "c1")
    spawner.processes["c1"].crash(-9)
    state = wait_until_status(client, "c1", "stopped")
    assert state["exit_code"] == -9
    assert state["revision"] == 2


# --- delete --------------------------------------------------------------------------------


def test_delete_stops_with_sigterm_and_forgets_the_instance(
    client: TestClient, spawner: FakeSpawner, tmp_path: Path
) -> None:
    create(client, "x1")
    assert (tmp_path / "x1.log").exists()
    response = client.delete(f"{INSTANCES_PATH}/x1")
    assert response.status_code == 200
    state = response.json()
    assert state["status"] == "stopped"
    assert state["exit_code"] == -signal.SIGTERM
    assert spawner.processes["x1"].signals == [signal.SIGTERM]
    assert client.get(f"{INSTANCES_PATH}/x1").status_code == 404
    assert not (tmp_path / "x1.log").exists()


def test_delete_escalates_to_sigkill_after_the_grace_period(
    client: TestClient, spawner: FakeSpawner
) -> None:
    spawner.ignore_sigterm = True
    create(client, "k1")
    state = client.delete(f"{INSTANCES_PATH}/k1").json()
    assert spawner.processes["k1"].signals == [signal.SIGTERM, signal.SIGKILL]
    assert state["exit_code"] == -signal.SIGKILL


def test_delete_of_a_stopped_instance_sends_no_signal(
    client: TestClient, spawner: FakeSpawner
) -> None:
    create(client, "s1")
    spawner.processes["s1"].crash(0)
    wait_until_status(client, "s1", "stopped")
    assert client.delete(f"{INSTANCES_PATH}/s1").json()["exit_code"] == 0
    assert spawner.processes["s1"].signals == []


def test_delete_of_an_unknown_id_is_404(client: TestClient) -> None:
    assert client.delete(f"{INSTANCES_PATH}/nope").status_code == 404


def test_delete_all_stops_everything(client: TestClient, spawner: FakeSpawner) -> None:
    create(client, "a")
    create(client, "b")
    body = client.delete(INSTANCES_PATH).json()
    assert body["status"] == "all_stopped"
    assert sorted(body["stopped_instances"]) == ["a", "b"]
    assert body["total_stopped"] == 2
    assert all(p.exited for p in spawner.processes.values())
    assert client.get(INSTANCES_PATH).json()["total_instances"] == 0


def test_delete_all_of_nothing_is_fine(client: TestClient) -> None:
    body = client.delete(INSTANCES_PATH).json()
    assert body == {"status": "all_stopped", "stopped_instances": [], "total_stopped": 0}


def test_shutting_the_app_down_stops_every_instance(
    service: object, spawner: FakeSpawner, client: TestClient
) -> None:
    create(client, "z1")
    create(client, "z2")
    client.__exit__(None, None, None)  # the lifespan's shutdown
    assert all(p.exited for p in spawner.processes.values())
