"""The operator's record of an actuation: kept from the binding to the relay, written as one log
line and as trace fields, and read back alike from either."""

from typing import Any

import pytest

from fma.adapters.k8s.actuations import LOG_MESSAGE, ActuationBook, pod_times
from fma.bench.actuation.classify import ActuationCondition as C
from fma.bench.actuation.classify import classify
from fma.bench.actuation.from_trace import evidence_from_events
from fma.bench.actuation.records import parse_record, records_from_log

T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z
Obj = dict[str, Any]


def requester_pod(
    name: str = "req-1", uid: str = "uid-1", container: str = "inference-server"
) -> Obj:
    return {
        "metadata": {"name": name, "uid": uid, "creationTimestamp": "2027-01-15T08:00:10Z"},
        "spec": {"containers": [{"name": container}]},
        "status": {
            "containerStatuses": [
                {"name": container, "state": {"running": {"startedAt": "2027-01-15T08:00:12Z"}}}
            ]
        },
    }


def launcher_pod(name: str = "launcher-a", ready: str | None = "2027-01-15T07:50:00Z") -> Obj:
    conditions = [{"type": "Ready", "status": "True", "lastTransitionTime": ready}] if ready else []
    return {
        "metadata": {"name": name, "creationTimestamp": "2027-01-15T07:49:00Z"},
        "spec": {"nodeName": "node-a", "containers": [{"name": "inference-server"}, {"name": "x"}]},
        "status": {"conditions": conditions},
    }


def test_pod_times_read_what_kubernetes_says() -> None:
    times = pod_times(launcher_pod())
    assert (times.created_s, times.ready_s) == (T0 - 660, T0 - 600)
    assert (times.node, times.first_container) == ("node-a", "inference-server")
    assert pod_times(requester_pod()).started_s == T0 + 12
    # The server container is the inference-server one, else the first.
    assert pod_times(requester_pod(container="requester")).started_s == T0 + 12
    assert pod_times({}).created_s is None


def bind_warm(book: ActuationBook, **pods: Obj) -> None:
    book.bound(
        requester_uid="uid-1",
        requester_pod=pods.get("requester", requester_pod()),
        provider_pod=pods.get("provider", launcher_pod()),
        provider_kind="launcher",
        instance="i-1",
        path="warm",
        bound_at="2027-01-15T08:00:13.250000Z",
    )


def test_a_warm_actuation_is_recorded_from_binding_to_relay() -> None:
    book = ActuationBook()
    bind_warm(book)
    book.instance_created("launcher-a", "i-1", T0 + 13.3)
    book.instance_created("launcher-a", "i-other", T0 + 14)  # another instance: not this one
    record = book.relayed("uid-1", T0 + 20.5, "warm")
    assert record is not None
    assert record.trace_fields() == {
        "requester_name": "req-1",
        "provider": "launcher-a",
        "provider_kind": "launcher",
        "instance": "i-1",
        "node": "node-a",
        "requester_created_t": T0 + 10,
        "requester_started_t": T0 + 12,
        "provider_created_t": T0 - 660,
        "provider_ready_t": T0 - 600,
        "bound_t": T0 + 13.25,
        "provider_create_t": None,
        "instance_create_t": T0 + 13.3,
        "wake_start_t": None,
        "wake_end_t": None,
        "relay_t": T0 + 20.5,
    }
    assert book.relayed("uid-1", T0 + 30, "warm") is None  # recorded once


def test_a_wake_retried_keeps_its_first_start_and_its_last_end() -> None:
    book = ActuationBook()
    bind_warm(book)
    book.path_changed("launcher-a", "hot")
    book.wake_started("launcher-a", "i-1", T0 + 14)
    book.wake_started("launcher-a", "i-1", T0 + 16)
    book.wake_ended("launcher-a", "i-1", T0 + 17)
    record = book.relayed("uid-1", T0 + 18, "hot")
    assert record is not None
    assert (record.path, record.wake_start_t, record.wake_end_t) == ("hot", T0 + 14, T0 + 17)


def test_a_launcher_made_for_the_requester_has_no_readiness_at_the_binding() -> None:
    book = ActuationBook()
    book.bound(
        requester_uid="uid-1",
        requester_pod=requester_pod(),
        provider_pod=launcher_pod(ready="2027-01-15T08:00:30Z"),
        provider_kind="launcher",
        instance="i-1",
        path="cold_launcher",
        bound_at="2027-01-15T08:00:13Z",
        provider_create_s=T0 + 12.9,
    )
    record = book.relayed("uid-1", T0 + 40, "cold_launcher")
    assert record is not None
    assert (record.provider_ready_t, record.provider_create_t) == (None, T0 + 12.9)


def test_a_rebinding_replaces_the_record_and_frees_the_old_provider() -> None:
    book = ActuationBook()
    bind_warm(book)
    bind_warm(book, provider=launcher_pod("launcher-b"))
    book.instance_created("launcher-a", "i-1", T0 + 15)  # the old provider: ignored
    record = book.relayed("uid-1", T0 + 20, "warm")
    assert record is not None
    assert (record.provider, record.instance_create_t) == ("launcher-b", None)


def test_the_log_line_reads_back_as_the_trace_fields() -> None:
    book = ActuationBook()
    bind_warm(book)
    book.instance_created("launcher-a", "i-1", T0 + 13.300001)
    record = book.relayed("uid-1", T0 + 20.123456789, "warm")
    assert record is not None
    line = f"2027-01-15 08:00:20,124 INFO fma.operator: {record.log_line()}"
    assert LOG_MESSAGE in line
    assert 'relayReadyTime="2027-01-15T08:00:20.123456' in line  # nanoseconds
    parsed = parse_record(line)
    assert parsed is not None
    expected = {"requester": "uid-1", "path": "warm", **record.trace_fields()}
    assert parsed.keys() == expected.keys()
    for key, value in expected.items():
        if isinstance(value, float):
            assert parsed[key] == pytest.approx(value, abs=1e-6), key
        else:
            assert parsed[key] == value, key


def test_other_lines_and_later_records_of_a_requester_are_ignored() -> None:
    book = ActuationBook()
    bind_warm(book)
    first = book.relayed("uid-1", T0 + 20, "warm")
    bind_warm(book)
    second = book.relayed("uid-1", T0 + 99, "hot")
    assert first is not None and second is not None
    lines = ['HTTP call done purpose="wake"', first.log_line(), second.log_line()]
    found = records_from_log(lines)
    assert list(found) == ["uid-1"]
    assert found["uid-1"]["relay_t"] == pytest.approx(T0 + 20)


def test_the_trace_fields_make_the_evidence_of_an_operator_trace() -> None:
    book = ActuationBook()
    bind_warm(book)
    book.instance_created("launcher-a", "i-1", T0 + 13.3)
    record = book.relayed("uid-1", T0 + 20.5, "warm")
    assert record is not None
    events = [
        {"t": T0 + 13.26, "kind": "bind", "provider": "launcher-a", "requester": "uid-1",
         "instance": "i-1", "path": "warm"},
        {"t": T0 + 20.6, "kind": "ready", "requester": "uid-1"},
        {"t": T0 + 20.6, "kind": "actuation", "requester": "uid-1", "path": "warm",
         "latency_s": 8.6, **record.trace_fields()},
    ]  # fmt: skip
    (evidence,) = evidence_from_events(events)
    assert evidence.provider_created_s == T0 - 660
    assert evidence.launcher_ready_before_bind is True
    assert evidence.relayed_s == T0 + 20.5
    assert classify(evidence).condition is C.T_WARM
