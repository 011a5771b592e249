"""The operator's trace says when a Pod leaves the API, as the simulator's does."""

import asyncio
import json
from pathlib import Path
from typing import Any

from kubernetes import client

from fma.adapters.k8s.operator import Operator, OperatorOptions
from fma.adapters.k8s.store import Kind
from tests.unit.k8s.conftest import NS, direct_pod, launcher_pod, requester_pod


def traced(tmp_path: Path, *events: tuple[str | None, dict[str, Any]]) -> list[tuple[str, str]]:
    """Feed Pod watch events to an operator; the (kind, id) of what its trace recorded."""
    trace = tmp_path / "events.jsonl"

    async def feed() -> None:
        operator = Operator(OperatorOptions(namespace=NS, trace=trace), client.ApiClient())
        for event_type, pod in events:
            operator.observe(Kind.POD, event_type, pod)
        await operator.close()

    asyncio.run(feed())
    lines = [json.loads(line) for line in trace.read_text().splitlines()] if trace.exists() else []
    return [(e["kind"], e.get("provider") or e.get("requester")) for e in lines]


def test_a_provider_or_requester_gone_from_the_api_is_recorded(tmp_path: Path) -> None:
    direct, launcher, requester = direct_pod(), launcher_pod(), requester_pod()
    found = traced(
        tmp_path,
        *((None, pod) for pod in (direct, launcher, requester)),
        ("MODIFIED", direct),
        *(("DELETED", pod) for pod in (direct, launcher, requester)),
    )
    assert found == [
        ("provider_deleted", direct["metadata"]["name"]),
        ("provider_deleted", launcher["metadata"]["name"]),
        ("requester_deleted", requester["metadata"]["uid"]),
    ]
