"""The stub engine: vLLM's endpoints FMA drives, its sleep cycle and its options."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from fma.api.latency import STUB_SLEEP_S_DEFAULT, STUB_START_S_DEFAULT, STUB_WAKE_S_DEFAULT
from fma.launcher.stub_engine import StubLatency, create_app, parse_args

NO_DELAY = ["--stub-start-s", "0", "--stub-sleep-s", "0", "--stub-wake-s", "0"]


@pytest.fixture
def stub() -> Iterator[TestClient]:
    args = parse_args(["--model", "/models/m", "--served-model-name", "m", "alias", *NO_DELAY])
    with TestClient(create_app(args)) as client:
        yield client


def complete(client: TestClient, **body: object) -> tuple[int, dict[str, object]]:
    response = client.post("/v1/completions", json={"model": "m", "prompt": "hi", **body})
    return response.status_code, response.json()


def test_health_and_models(stub: TestClient) -> None:
    assert stub.get("/health").status_code == 200
    models = stub.get("/v1/models").json()
    assert [m["id"] for m in models["data"]] == ["m", "alias"]
    assert models["data"][0]["root"] == "/models/m"


def test_completions_return_the_requested_number_of_tokens(stub: TestClient) -> None:
    status, body = complete(stub, max_tokens=5, prompt="one two three")
    assert status == 200
    assert body["object"] == "text_completion"
    choice = body["choices"][0]  # type: ignore[index]
    assert len(choice["text"].split()) == 5
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}


def test_an_unknown_model_is_404_like_vllm(stub: TestClient) -> None:
    status, body = complete(stub, model="other")
    assert status == 404
    assert "does not exist" in body["error"]["message"]  # type: ignore[index]


def test_bad_completion_requests_are_422(stub: TestClient) -> None:
    assert complete(stub, max_tokens=0)[0] == 422
    assert complete(stub, max_tokens=10**6)[0] == 422


def test_sleep_refuses_inference_until_wake(stub: TestClient) -> None:
    assert stub.get("/is_sleeping").json() == {"is_sleeping": False}
    assert stub.post("/sleep", params={"level": 1}).status_code == 200
    assert stub.get("/is_sleeping").json() == {"is_sleeping": True}
    status, body = complete(stub)
    assert status == 503
    assert "asleep" in body["error"]["message"]  # type: ignore[index]
    assert stub.post("/sleep").status_code == 200  # sleeping again is a no-op
    assert stub.post("/wake_up").status_code == 200
    assert stub.get("/is_sleeping").json() == {"is_sleeping": False}
    assert complete(stub)[0] == 200
    assert stub.post("/wake_up").status_code == 200  # waking an awake engine is a no-op


def test_only_sleep_levels_one_and_two_exist(stub: TestClient) -> None:
    assert stub.post("/sleep", params={"level": 2}).status_code == 200
    assert stub.post("/sleep", params={"level": 3}).status_code == 422


def test_other_vllm_options_are_ignored() -> None:
    args = parse_args(
        [
            "--model",
            "m",
            "--dtype",
            "float32",
            "--enforce-eager",
            "--port",
            "9001",
            "--enable-sleep-mode",
            "--max-model-len",
            "512",
        ],
        environ={},
    )
    assert (args.model, args.port, args.served_model_names) == ("m", 9001, ("m",))


def test_latencies_default_to_the_simulators() -> None:
    assert parse_args([], environ={}).latency == StubLatency(
        STUB_START_S_DEFAULT, STUB_SLEEP_S_DEFAULT, STUB_WAKE_S_DEFAULT
    )


def test_latencies_come_from_flags_before_the_environment() -> None:
    environ = {"FMA_STUB_START_S": "1.5", "FMA_STUB_SLEEP_S": "0.5", "FMA_STUB_WAKE_S": "0.25"}
    assert parse_args([], environ=environ).latency == StubLatency(1.5, 0.5, 0.25)
    flagged = parse_args(["--stub-wake-s", "3"], environ=environ)
    assert flagged.latency == StubLatency(1.5, 0.5, 3.0)


@pytest.mark.parametrize(
    ("argv", "environ"),
    [
        (["--port", "http"], {}),
        (["--port", "70000"], {}),
        (["--stub-sleep-s", "-1"], {}),
        (["--stub-sleep-s", "nan"], {}),
        ([], {"FMA_STUB_WAKE_S": "soon"}),
    ],
)
def test_bad_values_exit(argv: list[str], environ: dict[str, str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(argv, environ=environ)


def test_the_stub_listens_on_every_address_unless_told_like_vllm() -> None:
    assert parse_args(["--model", "m"]).host == "0.0.0.0"
    assert parse_args(["--model", "m", "--host", "127.0.0.1"]).host == "127.0.0.1"
