"""The operator's HTTP calls: what each sends, how long it may take, how its failures are
classified, and the one log line each writes."""

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from fma.adapters.k8s.calls import CallError, Calls, CallTimeouts, rfc3339
from fma.core.outcomes import OutcomeKind
from fma.launcher.api import VllmConfig

T0 = 1_800_000_000.25
IP = "10.0.0.2"
INSTANCE_JSON = {
    "instance_id": "i-1",
    "status": "running",
    "revision": 3,
    "options": ["--port", "8005"],
}
Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """An httpx transport that answers with ``handler`` and keeps every request."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)


def run_with(handler: Handler, scenario: Callable[[Calls], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        calls = Calls(transport=httpx.MockTransport(handler), wall_clock=lambda: T0)
        try:
            return await scenario(calls)
        finally:
            await calls.aclose()

    return asyncio.run(main())


def ok(body: Any = None, status: int = 200) -> Handler:
    return lambda request: httpx.Response(status, json=body)


def failing(error: type[httpx.HTTPError]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error("boom", request=request)

    return handler


def log_line(caplog: pytest.LogCaptureFixture) -> dict[str, str]:
    """The fields of the one ``HTTP call done`` line logged."""
    lines = [r.getMessage() for r in caplog.records if r.name == "fma.operator"]
    done = [line for line in lines if line.startswith("HTTP call done ")]
    assert len(done) == 1, lines
    raw = re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', done[0])
    assert done[0] == "HTTP call done " + " ".join(f'{k}="{v}"' for k, v in raw)
    return {k: json.loads(f'"{v}"') for k, v in raw}


# --- requests ----------------------------------------------------------------------------------


def test_accelerators_asks_the_requesters_spi() -> None:
    recorder = Recorder(ok(["GPU-a", "GPU-b"]))
    gpus = run_with(recorder, lambda calls: calls.accelerators(IP, 8081, "req-1"))
    assert gpus == ("GPU-a", "GPU-b")
    (request,) = recorder.requests
    assert (request.method, str(request.url)) == (
        "GET",
        "http://10.0.0.2:8081/v1/dual-pods/accelerators",
    )


@pytest.mark.parametrize(
    ("ready", "path"), [(True, "/v1/become-ready"), (False, "/v1/become-unready")]
)
def test_relay_posts_the_readiness(ready: bool, path: str) -> None:
    recorder = Recorder(ok({"ready": ready}))
    run_with(recorder, lambda calls: calls.relay(IP, 8081, ready, "req-1"))
    (request,) = recorder.requests
    assert (request.method, request.url.path) == ("POST", path)


def test_configure_proxy_puts_the_target() -> None:
    recorder = Recorder(ok({"address": "10.0.0.3", "port": 8005}))
    run_with(recorder, lambda calls: calls.configure_proxy(IP, 8081, "10.0.0.3", 8005, "req-1"))
    (request,) = recorder.requests
    assert (request.method, str(request.url)) == ("PUT", "http://10.0.0.2:8081/v1/proxy/config")
    assert json.loads(request.content) == {"address": "10.0.0.3", "port": 8005}


@pytest.mark.parametrize(("status", "says"), [(409, "another target"), (500, "cannot forward")])
def test_a_proxy_that_cannot_take_the_target_is_invalid(status: int, says: str) -> None:
    handler = ok({"detail": "the proxy forwards to 10.0.0.9:8000"}, status)
    with pytest.raises(CallError) as raised:
        run_with(handler, lambda calls: calls.configure_proxy(IP, 8081, "10.0.0.3", 8005, "r"))
    assert raised.value.kind is OutcomeKind.INVALID
    assert says in raised.value.message
    assert "10.0.0.9:8000" in raised.value.message


def test_sleep_and_wake_post_to_the_engine_with_the_long_read_timeout() -> None:
    recorder = Recorder(ok())

    async def scenario(calls: Calls) -> None:
        await calls.sleep(IP, 8005, "req-1")
        await calls.wake(IP, 8005, "req-1")

    run_with(recorder, scenario)
    sleep, wake = recorder.requests
    assert (sleep.method, str(sleep.url)) == ("POST", "http://10.0.0.2:8005/sleep?level=1")
    assert (wake.method, str(wake.url)) == ("POST", "http://10.0.0.2:8005/wake_up")
    for request in (sleep, wake):
        assert request.extensions["timeout"]["connect"] == 2.0
        assert request.extensions["timeout"]["read"] == 30.0


def test_short_calls_have_the_short_read_timeout() -> None:
    recorder = Recorder(ok({"is_sleeping": True}))
    run_with(recorder, lambda calls: calls.is_sleeping(IP, 8005))
    (request,) = recorder.requests
    assert request.extensions["timeout"]["connect"] == 2.0
    assert request.extensions["timeout"]["read"] == 5.0


def test_timeouts_are_configurable() -> None:
    recorder = Recorder(ok())

    async def main() -> None:
        timeouts = CallTimeouts(connect_s=0.5, read_s=1.0, move_s=90.0)
        calls = Calls(timeouts=timeouts, transport=httpx.MockTransport(recorder))
        await calls.wake(IP, 8005)
        await calls.relay(IP, 8081, True, "r")
        await calls.aclose()

    asyncio.run(main())
    wake, relay = recorder.requests
    assert (wake.extensions["timeout"]["connect"], wake.extensions["timeout"]["read"]) == (
        0.5,
        90.0,
    )
    assert relay.extensions["timeout"]["read"] == 1.0


@pytest.mark.parametrize(
    ("body", "expected"), [({"is_sleeping": True}, True), ({"is_sleeping": False}, False)]
)
def test_is_sleeping_reads_the_engines_answer(body: dict[str, bool], expected: bool) -> None:
    assert run_with(ok(body), lambda calls: calls.is_sleeping(IP, 8005)) is expected


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False), (500, False)])
def test_health_is_whether_the_engine_answers_200(status: int, healthy: bool) -> None:
    assert run_with(ok(None, status), lambda calls: calls.health(IP, 8005)) is healthy


def test_health_without_an_answer_is_an_error() -> None:
    with pytest.raises(CallError) as raised:
        run_with(failing(httpx.ConnectError), lambda calls: calls.health(IP, 8005))
    assert raised.value.kind is OutcomeKind.TRANSIENT


def test_an_ipv6_address_is_bracketed() -> None:
    recorder = Recorder(ok({"ready": True}))
    run_with(recorder, lambda calls: calls.relay("fd00::5", 8081, True, "r"))
    assert str(recorder.requests[0].url) == "http://[fd00::5]:8081/v1/become-ready"


# --- answers that are not what the endpoint promises --------------------------------------------


@pytest.mark.parametrize("body", [{"gpus": []}, ["GPU-a", 3], "GPU-a"])
def test_accelerators_that_are_not_a_list_of_uuids_are_invalid(body: Any) -> None:
    with pytest.raises(CallError) as raised:
        run_with(ok(body), lambda calls: calls.accelerators(IP, 8081, "r"))
    assert raised.value.kind is OutcomeKind.INVALID


def test_is_sleeping_without_a_boolean_is_invalid() -> None:
    with pytest.raises(CallError) as raised:
        run_with(ok({"is_sleeping": "yes"}), lambda calls: calls.is_sleeping(IP, 8005))
    assert raised.value.kind is OutcomeKind.INVALID


# --- classification ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (404, OutcomeKind.NOT_FOUND),
        (409, OutcomeKind.CONFLICT),
        (400, OutcomeKind.INVALID),
        (422, OutcomeKind.INVALID),
        (403, OutcomeKind.INVALID),
        (429, OutcomeKind.TRANSIENT),
        (500, OutcomeKind.TRANSIENT),
        (503, OutcomeKind.TRANSIENT),
    ],
)
def test_error_answers_are_classified(status: int, kind: OutcomeKind) -> None:
    handler = ok({"detail": "nope"}, status)
    with pytest.raises(CallError) as raised:
        run_with(handler, lambda calls: calls.wake(IP, 8005, "r"))
    assert raised.value.kind is kind
    assert raised.value.status == status
    assert f"answered {status}: nope" in raised.value.message


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (httpx.ConnectError, OutcomeKind.TRANSIENT),
        (httpx.ConnectTimeout, OutcomeKind.TRANSIENT),
        (httpx.ReadTimeout, OutcomeKind.UNKNOWN),
        (httpx.WriteTimeout, OutcomeKind.UNKNOWN),
        (httpx.RemoteProtocolError, OutcomeKind.UNKNOWN),
        (httpx.ReadError, OutcomeKind.UNKNOWN),
    ],
)
def test_calls_without_an_answer_are_classified(
    error: type[httpx.HTTPError], kind: OutcomeKind
) -> None:
    with pytest.raises(CallError) as raised:
        run_with(failing(error), lambda calls: calls.sleep(IP, 8005, "r"))
    assert raised.value.kind is kind
    assert raised.value.status == 0


def test_vllm_error_bodies_are_read() -> None:
    body = {"error": {"message": "Sleep mode is not enabled", "type": "x", "code": 400}}
    with pytest.raises(CallError) as raised:
        run_with(ok(body, 400), lambda calls: calls.sleep(IP, 8005, "r"))
    assert "Sleep mode is not enabled" in raised.value.message


# --- the launcher ------------------------------------------------------------------------------


def test_create_instance_puts_the_config_to_the_launcher() -> None:
    recorder = Recorder(ok(INSTANCE_JSON, 201))
    config = VllmConfig(options=["--port", "8005"], gpu_uuids=["GPU-a"])
    state = run_with(
        recorder, lambda calls: calls.create_instance(IP, 8001, "i-1", config, "req-1")
    )
    assert state.instance_id == "i-1"
    (request,) = recorder.requests
    assert (request.method, str(request.url)) == (
        "PUT",
        "http://10.0.0.2:8001/v2/vllm/instances/i-1",
    )
    assert json.loads(request.content) == {"options": ["--port", "8005"], "gpu_uuids": ["GPU-a"]}


@pytest.mark.parametrize(
    ("status", "kind"),
    [(409, OutcomeKind.CONFLICT), (422, OutcomeKind.INVALID), (503, OutcomeKind.TRANSIENT)],
)
def test_launcher_errors_are_classified(status: int, kind: OutcomeKind) -> None:
    config = VllmConfig(options=["--port", "8005"])
    with pytest.raises(CallError) as raised:
        run_with(
            ok({"detail": "no"}, status),
            lambda calls: calls.create_instance(IP, 8001, "i-1", config),
        )
    assert (raised.value.kind, raised.value.status) == (kind, status)


def test_a_launcher_that_does_not_answer_is_transient() -> None:
    with pytest.raises(CallError) as raised:
        run_with(failing(httpx.ConnectError), lambda calls: calls.list_instances(IP, 8001))
    assert raised.value.kind is OutcomeKind.TRANSIENT


def test_delete_instance_of_an_unknown_id_is_not_found() -> None:
    recorder = Recorder(ok({"detail": "unknown instance i-9"}, 404))
    with pytest.raises(CallError) as raised:
        run_with(recorder, lambda calls: calls.delete_instance(IP, 8001, "i-9"))
    assert raised.value.kind is OutcomeKind.NOT_FOUND
    assert recorder.requests[0].method == "DELETE"


def test_a_stopping_delete_may_take_longer() -> None:
    recorder = Recorder(ok(INSTANCE_JSON))

    async def scenario(calls: Calls) -> None:
        await calls.delete_instance(IP, 8001, "i-1")
        await calls.delete_instance(IP, 8001, "i-1", stopping=True)

    run_with(recorder, scenario)
    short, long = recorder.requests
    assert short.extensions["timeout"]["read"] == 5.0
    assert long.extensions["timeout"]["read"] == 45.0


def test_list_instances() -> None:
    listing = {"revision": 3, "total_instances": 1, "running_instances": 1}
    recorder = Recorder(ok({**listing, "instances": [INSTANCE_JSON]}))
    listed = run_with(recorder, lambda calls: calls.list_instances(IP, 8001))
    assert [i.instance_id for i in listed.instances] == ["i-1"]
    assert recorder.requests[0].url.params["detail"] == "true"


def test_a_launcher_answer_that_is_not_the_launchers_is_invalid() -> None:
    with pytest.raises(CallError) as raised:
        run_with(ok({"what": 1}), lambda calls: calls.list_instances(IP, 8001))
    assert raised.value.kind is OutcomeKind.INVALID


# --- the log line ------------------------------------------------------------------------------


def test_every_call_logs_one_line_a_harness_can_parse(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="fma.operator")
    run_with(ok(), lambda calls: calls.wake(IP, 8005, "req-1"))
    fields = log_line(caplog)
    assert fields == {
        "requesterName": "req-1",
        "purpose": "wake",
        "method": "POST",
        "url": "http://10.0.0.2:8005/wake_up",
        "httpCallStartTime": "2027-01-15T08:00:00.250000000Z",
        "latencySecs": fields["latencySecs"],
        "statusCode": "200",
        "err": "",
    }
    assert float(fields["latencySecs"]) >= 0


def test_a_call_without_an_answer_logs_status_0(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="fma.operator")
    with pytest.raises(CallError):
        run_with(failing(httpx.ConnectError), lambda calls: calls.relay(IP, 8081, True, "req-1"))
    fields = log_line(caplog)
    assert (fields["purpose"], fields["statusCode"]) == ("relay_ready", "0")
    assert "ConnectError" in fields["err"]


def test_an_error_answer_logs_its_status_and_text(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="fma.operator")
    with pytest.raises(CallError):
        run_with(ok({"detail": 'a "quoted" reason'}, 503), lambda calls: calls.sleep(IP, 1, "r"))
    fields = log_line(caplog)
    assert fields["statusCode"] == "503"
    assert fields["err"] == 'answered 503: a "quoted" reason'


@pytest.mark.parametrize(
    ("scenario", "purpose", "status"),
    [
        (
            lambda calls: calls.create_instance(
                IP, 8001, "i-1", VllmConfig(options=["--port", "8005"]), "req-1"
            ),
            "create_instance",
            "201",
        ),
        (lambda calls: calls.delete_instance(IP, 8001, "i-1", "req-1"), "delete_instance", "201"),
        (lambda calls: calls.accelerators(IP, 8081, "req-1"), "get_gpu_uuids", "201"),
    ],
)
def test_launcher_and_spi_calls_log_their_purpose(
    caplog: pytest.LogCaptureFixture,
    scenario: Callable[[Calls], Awaitable[Any]],
    purpose: str,
    status: str,
) -> None:
    caplog.set_level(logging.INFO, logger="fma.operator")
    handler = ok(["GPU-a"] if purpose == "get_gpu_uuids" else INSTANCE_JSON, 201)
    run_with(handler, scenario)
    fields = log_line(caplog)
    assert (fields["requesterName"], fields["purpose"], fields["statusCode"]) == (
        "req-1",
        purpose,
        status,
    )


def test_rfc3339_is_utc_with_microseconds() -> None:
    assert rfc3339(0.5) == "1970-01-01T00:00:00.500000Z"
