"""The instance table as a state machine: transitions, revisions and watch positions."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fma.launcher.api import EventType, InstanceStatus, VllmConfig
from fma.launcher.errors import (
    CapacityExhausted,
    DuplicateInstance,
    RevisionGone,
    UnknownInstance,
)
from fma.launcher.manager import InstanceManager

CONFIG = VllmConfig(options=["--port", "8000"])


def manager(**kwargs: int) -> InstanceManager:
    return InstanceManager(**{"instance_count_max": 8, **kwargs})


def test_every_transition_increments_the_revision_once_and_stamps_it() -> None:
    table = manager()
    created = table.add("a", CONFIG, env_vars=None, pid=11)
    stopped = table.mark_stopped("a", 1)
    removed = table.remove("a")
    assert (created.revision, stopped and stopped.revision, removed.revision) == (1, 2, 3)
    assert table.revision == 3
    kinds = [(e.type, e.object.revision) for e in table.events_since(0)]
    assert kinds == [(EventType.CREATED, 1), (EventType.STOPPED, 2), (EventType.DELETED, 3)]


def test_an_exit_is_recorded_once_and_never_for_a_removed_instance() -> None:
    table = manager()
    table.add("a", CONFIG, env_vars=None, pid=11)
    assert table.mark_stopped("a", 0) is not None
    assert table.mark_stopped("a", 0) is None
    table.remove("a")
    assert table.mark_stopped("a", 0) is None
    assert table.revision == 3


def test_a_stopped_instance_keeps_its_exit_code_until_removed() -> None:
    table = manager()
    table.add("a", CONFIG, env_vars={"CUDA_VISIBLE_DEVICES": "0"}, pid=11)
    table.mark_stopped("a", -9)
    state = table.get("a")
    assert (state.status, state.exit_code, state.pid) == (InstanceStatus.STOPPED, -9, 11)


def test_ids_are_unique_while_the_instance_exists() -> None:
    table = manager()
    table.add("a", CONFIG, env_vars=None, pid=11)
    with pytest.raises(DuplicateInstance):
        table.add("a", CONFIG, env_vars=None, pid=12)
    table.remove("a")
    table.add("a", CONFIG, env_vars=None, pid=13)


def test_stopped_instances_count_against_the_limit() -> None:
    table = manager(instance_count_max=1)
    table.add("a", CONFIG, env_vars=None, pid=11)
    table.mark_stopped("a", 0)
    with pytest.raises(CapacityExhausted):
        table.check_can_add("b")


def test_unknown_ids_raise() -> None:
    with pytest.raises(UnknownInstance):
        manager().get("x")
    with pytest.raises(UnknownInstance):
        manager().remove("x")


def test_snapshot_gives_a_created_per_instance_at_the_current_revision() -> None:
    table = manager()
    table.add("a", CONFIG, env_vars=None, pid=11)
    table.add("b", CONFIG, env_vars=None, pid=12)
    table.mark_stopped("a", 0)
    revision, events = table.snapshot()
    assert revision == 3
    assert [(e.type, e.object.instance_id, e.object.status) for e in events] == [
        (EventType.CREATED, "a", InstanceStatus.STOPPED),
        (EventType.CREATED, "b", InstanceStatus.RUNNING),
    ]


@pytest.mark.parametrize(
    ("since", "resumable"),
    [(0, False), (5, False), (6, True), (9, True), (10, True), (11, False)],
)
def test_positions_are_resumable_exactly_while_their_events_are_buffered(
    since: int, resumable: bool
) -> None:
    table = manager(event_buffer_max=4)
    for n in range(5):  # revisions 1..10; the buffer keeps 7..10
        table.add(f"i{n}", CONFIG, env_vars=None, pid=n)
        table.remove(f"i{n}")
    if resumable:
        assert [e.object.revision for e in table.events_since(since)] == list(range(since + 1, 11))
    else:
        with pytest.raises(RevisionGone):
            table.events_since(since)


def test_on_change_is_called_after_each_transition() -> None:
    calls: list[int] = []
    table = InstanceManager(instance_count_max=2, on_change=lambda: calls.append(table.revision))
    table.add("a", CONFIG, env_vars=None, pid=11)
    table.mark_stopped("a", 0)
    table.remove("a")
    assert calls == [1, 2, 3]


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError):
        InstanceManager(instance_count_max=0)


OPERATIONS = st.lists(
    st.tuples(st.sampled_from(["add", "stop", "remove"]), st.sampled_from(["a", "b", "c"])),
    max_size=40,
)


@given(operations=OPERATIONS, buffer=st.integers(1, 12), since=st.integers(0, 60))
def test_a_resumed_watch_sees_exactly_the_events_after_its_position(
    operations: list[tuple[str, str]], buffer: int, since: int
) -> None:
    table = manager(event_buffer_max=buffer)
    history = []  # every event ever recorded, the ground truth
    for operation, instance_id in operations:
        before = table.revision
        if operation == "add" and instance_id not in {s.instance_id for s in table.instances()}:
            table.add(instance_id, CONFIG, env_vars=None, pid=1)
        elif operation == "stop":
            table.mark_stopped(instance_id, 0)
        elif operation == "remove" and instance_id in {s.instance_id for s in table.instances()}:
            table.remove(instance_id)
        if table.revision != before:
            assert table.revision == before + 1
            history.append(table.events_since(before)[0])
    try:
        replayed = table.events_since(since)
    except RevisionGone:
        assert since > table.revision or since < table.revision - buffer
        return
    assert replayed == history[since:]
