"""What llm-d-benchmark's FMA harness reads, checked with the harness's own parsing rules.

The harness (``workload/harnesses``: ``dpc_log_parser.py``, ``nop_functions.py``,
``fma_functions.py``) is not a dependency; the few rules it applies are restated here, as it
applies them, and each test feeds them what FMA produces:

- the controller's log: lines containing ``HTTP call done``, fields ``(\\w+)="([^"]*)"``,
  ``purpose`` among ``wake`` / ``create_instance`` / ``relay_ready``, ``httpCallStartTime`` read
  with ``datetime.fromisoformat(s.replace("Z", "+00:00"))``, keyed by ``requesterName``;
- an engine's log: the first ``MM-DD HH:MM:SS[.mmm]`` on a line, the float after `` It took ``
  on lines with `` seconds to fall asleep`` or `` seconds to wake up``; hot when the last two
  such events are (wake, sleep); its port from the dict after ``non-default args:``;
- a launcher: the last instance of ``GET /v2/vllm/instances`` is the one under test, and the
  Pod's first container is the launcher.
"""

import ast
import asyncio
import inspect
import logging
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from fma.adapters.k8s import cli as operator_cli
from fma.adapters.k8s.calls import Calls
from fma.adapters.k8s.render.launcher import launcher_pod
from fma.api.crds import LauncherConfig
from fma.bench.actuation.vllm_log import moves
from fma.launcher.api import VllmConfig
from fma.launcher.gpus import GpuTranslator
from fma.launcher.service import LauncherService, ServiceSettings
from fma.launcher.stub_engine import create_app, parse_args
from fma.launcher.vllm_lines import wake_line
from tests.unit.launcher.launcher_fakes import FakeSpawner

# --- the harness's rules, restated -------------------------------------------------------------

FIELD_RE = re.compile(r'(\w+)="([^"]*)"')
DATE_PATTERN = re.compile(r"\d{2}-\d{2}\s\d{2}:\d{2}:\d{2}(?:\.\d{3})?")
FLOATS = re.compile(r"[-+]?\d*\.\d+|\d+")
PURPOSE_FIELD = {
    "wake": "wake_start_time",
    "create_instance": "instance_create_start_time",
    "relay_ready": "relay_readiness_time",
}


def parse_rfc3339_nano(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def dpc_records(lines: list[str]) -> dict[str, dict[str, float]]:
    """``parse_dpc_log``: requesterName -> the anchors found."""
    records: dict[str, dict[str, float]] = {}
    for line in lines:
        if (
            "HTTP call done" not in line
            and "Created launcher-based server-providing pod" not in line
        ):
            continue
        fields = dict(FIELD_RE.findall(line))
        name = fields.get("requesterName")
        if not name:
            continue
        record = records.setdefault(name, {})
        if "HTTP call done" in line:
            key = PURPOSE_FIELD.get(fields.get("purpose", ""))
            t = parse_rfc3339_nano(fields.get("httpCallStartTime", ""))
            if key is not None and t is not None:
                record[key] = t
        else:
            t = parse_rfc3339_nano(fields.get("k8sCallStartTime", ""))
            if t is not None:
                record["launcher_create_start_time"] = t
    return records


def sleep_wake(text: str) -> list[tuple[str, float]]:
    """``parse_logs``: (type, seconds) of each sleep or wake line that has a timestamp."""
    found = []
    for line in text.splitlines():
        line = line.strip()
        if DATE_PATTERN.search(line) is None:
            continue
        for kind, marker in (("sleep", " seconds to fall asleep"), ("wake", " seconds to wake up")):
            if marker in line:
                index = line.find(" It took ")
                floats = [float(f) for f in FLOATS.findall(line[index:])] if index >= 0 else []
                if floats:
                    found.append((kind, floats[0]))
    return found


def harness_says_hot(events: list[tuple[str, float]]) -> bool:
    return len(events) >= 2 and events[-1][0] == "sleep" and events[-2][0] == "wake"


# --- the controller's log ----------------------------------------------------------------------

T0 = 1_800_000_000.25


def test_the_calls_log_what_the_harness_parses_at_the_default_level(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="fma.operator")
    instance = {"instance_id": "i-1", "status": "running", "revision": 1, "options": []}

    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "PUT":
            return httpx.Response(201, json=instance)
        return httpx.Response(200)

    clock = iter([T0, T0 + 1.5, T0 + 7.125])

    async def main() -> None:
        calls = Calls(transport=httpx.MockTransport(answer), wall_clock=lambda: next(clock))
        try:
            config = VllmConfig(options=["--port", "8005"])
            await calls.create_instance("10.0.0.3", 8001, "i-1", config, "req-a")
            await calls.wake("10.0.0.3", 8005, "req-b")
            await calls.relay("10.0.0.2", 8081, True, "req-a")
        finally:
            await calls.aclose()

    asyncio.run(main())
    assert {r.levelno for r in caplog.records} == {logging.INFO}
    lines = [r.getMessage() for r in caplog.records]
    assert all(re.search(r'requesterName="[^"]+"', line) for line in lines)
    assert all(re.search(r'httpCallStartTime="[^"]*\.\d{9}Z"', line) for line in lines)
    records = dpc_records(lines)
    assert records["req-a"]["instance_create_start_time"] == pytest.approx(T0, abs=1e-6)
    assert records["req-a"]["relay_readiness_time"] == pytest.approx(T0 + 7.125, abs=1e-6)
    assert records["req-b"] == {"wake_start_time": pytest.approx(T0 + 1.5, abs=1e-6)}


def test_the_operator_logs_at_info_unless_told_otherwise() -> None:
    default = inspect.signature(operator_cli.run).parameters["log_level"].default
    assert logging.getLevelName(default.upper()) <= logging.INFO


# --- the stub engine's log ---------------------------------------------------------------------

VLLM_LINE = re.compile(r"^\((\w+) pid=\d+\) INFO \d{2}-\d{2} \d{2}:\d{2}:\d{2} \[[\w.]+:\d+\] ")
"""vLLM 0.32's line format."""


def test_the_stub_logs_sleep_and_wake_as_vllm_does() -> None:
    lines: list[str] = []
    args = parse_args(
        ["--model", "m", "--port", "8005", "--stub-sleep-s", "0", "--stub-wake-s", "0"]
    )
    with TestClient(create_app(args, log=lines.append)) as stub:
        assert stub.post("/sleep", params={"level": 1}).status_code == 200
        assert stub.post("/wake_up").status_code == 200
        assert stub.post("/sleep", params={"level": 1}).status_code == 200
        assert stub.get("/version").json()["version"]
    assert all(VLLM_LINE.match(line) for line in lines)
    text = "".join(line + "\n" for line in lines)
    events = sleep_wake(text)
    assert [kind for kind, _ in events] == ["sleep", "wake", "sleep"]
    assert all(0 <= took < 1 for _, took in events)
    assert harness_says_hot(events)  # woken, then put back to sleep
    assert any("Sleep mode freed" in line for line in lines)
    assert [m.kind for m in moves(text, year=datetime.now().year)] == ["sleep", "wake", "sleep"]


def test_the_stubs_start_line_gives_its_port(capsys: pytest.CaptureFixture[str]) -> None:
    from fma.launcher.stub_engine import non_default_args
    from fma.launcher.vllm_lines import start_line

    line = start_line(non_default_args(parse_args(["--model", "m", "--port", "8006"])))
    assert VLLM_LINE.match(line) and DATE_PATTERN.search(line)
    args = ast.literal_eval(line.split("non-default args:", 1)[1].strip())
    assert args["port"] == 8006
    assert args["enable_sleep_mode"] is True


# --- the launcher ------------------------------------------------------------------------------


def test_the_launcher_lists_the_most_recently_woken_instance_last(tmp_path: Path) -> None:
    service = LauncherService(
        spawner=FakeSpawner(),
        translator=GpuTranslator({}, source="test"),
        settings=ServiceSettings(log_dir=tmp_path, stop_grace_s=0.1, instance_count_max=4),
    )

    def listed() -> list[str]:
        return [s.instance_id for s in service.list_detail().instances]

    def log(instance: str, text: str) -> None:
        with (tmp_path / f"{instance}.log").open("a") as out:
            out.write(text)

    async def scenario() -> None:
        config = VllmConfig(options=["--port", "8005"])
        for instance in ("i-1", "i-2", "i-3"):
            service.create(instance, config)
        assert listed() == ["i-1", "i-2", "i-3"]  # created: newest last
        log("i-1", wake_line(0.2, at_s=1_800_000_000) + "\n")
        assert listed()[-1] == "i-1"  # the harness takes the last one
        log("i-3", wake_line(0.2, at_s=1_800_000_020) + "\n")
        log("i-2", wake_line(0.2, at_s=1_800_000_010) + "\n")
        assert listed() == ["i-1", "i-2", "i-3"]  # both woke since: in the order they woke
        log("i-1", wake_line(0.2, at_s=1_800_000_030))  # no newline yet: not a whole line
        assert listed()[-1] == "i-3"
        log("i-1", "\n")
        assert listed()[-1] == "i-1"
        assert service.list_ids().instance_ids[-1] == "i-1"
        await service.delete("i-1")
        service.create("i-4", config)
        assert listed() == ["i-2", "i-3", "i-4"]

    asyncio.run(scenario())


def test_the_launchers_first_container_is_the_launcher() -> None:
    server = {"name": "inference-server", "image": "ghcr.io/llm-d-fma/fma:1"}
    lc = LauncherConfig.model_validate(
        {
            "metadata": {"name": "lc", "namespace": "ns"},
            "spec": {
                "maxInstances": 2,
                "podTemplate": {
                    "spec": {"containers": [{"name": "sidecar", "image": "busybox"}, server]}
                },
            },
        }
    )
    pod: dict[str, Any] = launcher_pod(lc, namespace="ns", node="n0", lc_uid=None, binding=None)
    first = pod["spec"]["containers"][0]
    assert (first["name"], first["image"]) == ("inference-server", "ghcr.io/llm-d-fma/fma:1")
