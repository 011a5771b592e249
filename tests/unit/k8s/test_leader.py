"""Leader election on a Lease: one holder at a time, a take-over only after the lease has run
out as the candidate saw it, a prompt hand-over on release, and a leader that stops acting
when it cannot renew or finds the Lease taken."""

import asyncio
import copy
import threading
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from typer.testing import CliRunner

from fma.adapters.k8s.leader import LeaseElector, LeaseSettings
from fma.cli import app

NS = "fma"
SETTINGS = LeaseSettings(lease_s=15.0, renew_deadline_s=10.0, retry_s=2.0)


class FakeLeases:
    """The Lease API of one API server: reads return copies, and a write must carry the
    resourceVersion it read (409 otherwise), as the real one enforces."""

    def __init__(self) -> None:
        self.lease: client.V1Lease | None = None
        self.version = 0
        self.failing = False
        self.hanging = threading.Event()
        """While clear, calls return; set it to make every call block until cleared."""

    def _enter(self) -> None:
        while self.hanging.is_set():
            threading.Event().wait(0.01)
        if self.failing:
            raise ApiException(status=500, reason="Internal Server Error")

    def read_namespaced_lease(self, name: str, namespace: str, **_: Any) -> client.V1Lease:
        self._enter()
        if self.lease is None:
            raise ApiException(status=404, reason="Not Found")
        return copy.deepcopy(self.lease)

    def create_namespaced_lease(self, namespace: str, body: client.V1Lease, **_: Any) -> None:
        self._enter()
        if self.lease is not None:
            raise ApiException(status=409, reason="AlreadyExists")
        self._store(body)

    def replace_namespaced_lease(
        self, name: str, namespace: str, body: client.V1Lease, **_: Any
    ) -> None:
        self._enter()
        assert self.lease is not None
        if body.metadata.resource_version != self.lease.metadata.resource_version:
            raise ApiException(status=409, reason="Conflict")
        self._store(body)

    def _store(self, body: client.V1Lease) -> None:
        self.version += 1
        stored = copy.deepcopy(body)
        stored.metadata.resource_version = str(self.version)
        self.lease = stored

    @property
    def holder(self) -> str | None:
        return self.lease.spec.holder_identity if self.lease is not None else None


class Clock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def elector(
    leases: FakeLeases, identity: str, clock: Clock, settings: LeaseSettings = SETTINGS
) -> LeaseElector:
    return LeaseElector(client.ApiClient(), NS, identity, settings, monotonic=clock, leases=leases)


def test_one_candidate_holds_the_lease_and_the_other_waits_while_it_is_renewed() -> None:
    leases, clock = FakeLeases(), Clock()
    a, b = elector(leases, "a", clock), elector(leases, "b", clock)
    assert a._try_acquire()
    assert not b._try_acquire()
    for _ in range(10):  # 40 s of renewals every 2 s, read by b in between
        clock.now_s += 2.0
        assert a._renew()
        clock.now_s += 2.0
        assert not b._try_acquire()
    assert leases.holder == "a"


def test_a_candidate_takes_over_only_once_the_lease_ran_out_as_it_saw_it() -> None:
    leases, clock = FakeLeases(), Clock()
    a, b = elector(leases, "a", clock), elector(leases, "b", clock)
    assert a._try_acquire()
    assert leases.lease is not None
    assert leases.lease.spec.lease_duration_seconds == 15
    assert not b._try_acquire()  # b first sees the record now
    clock.now_s += 14.0
    assert not b._try_acquire()
    clock.now_s += 1.5
    assert b._try_acquire()
    assert leases.holder == "b"
    assert leases.lease.spec.lease_transitions == 1
    assert not a._renew()  # the old holder learns it lost


def test_a_released_lease_is_taken_at_the_next_try() -> None:
    leases, clock = FakeLeases(), Clock()
    a, b = elector(leases, "a", clock), elector(leases, "b", clock)
    assert a._try_acquire()
    a.leading = True
    assert not b._try_acquire()
    asyncio.run(a.release())
    assert not a.leading
    assert leases.holder is None
    assert b._try_acquire()  # no waiting out the lease
    assert leases.holder == "b"


def run_hold(candidate: LeaseElector, stop: asyncio.Event | None = None) -> None:
    async def main() -> None:
        await asyncio.wait_for(candidate.hold(stop), timeout=30)

    asyncio.run(main())


FAST = LeaseSettings(lease_s=1.0, renew_deadline_s=0.3, retry_s=0.02)


def test_a_leader_that_finds_the_lease_taken_stops_at_its_next_renewal() -> None:
    leases = FakeLeases()
    a = LeaseElector(client.ApiClient(), NS, "a", FAST, leases=leases)
    assert asyncio.run(a.acquire())
    assert leases.lease is not None
    leases.lease.spec.holder_identity = "intruder"
    run_hold(a)
    assert not a.leading
    asyncio.run(a.release())
    assert leases.holder == "intruder"  # a leader that lost does not release another's Lease


@pytest.mark.parametrize("fault", ["failing", "hanging"])
def test_a_leader_that_cannot_renew_gives_up_at_the_deadline(fault: str) -> None:
    leases = FakeLeases()
    a = LeaseElector(client.ApiClient(), NS, "a", FAST, leases=leases)
    assert asyncio.run(a.acquire())
    if fault == "failing":
        leases.failing = True
    else:
        leases.hanging.set()
        # The hung call's thread ends later, as a request timeout would end it (asyncio.run
        # waits for it on the way out); the leader must have given up before.
        threading.Timer(2.0, leases.hanging.clear).start()
    gave_up = []

    async def main() -> None:
        await asyncio.wait_for(a.hold(), timeout=30)
        gave_up.append(leases.hanging.is_set() or fault == "failing")

    asyncio.run(main())
    assert not a.leading
    assert gave_up == [True]  # while the call still hung


def test_a_stopped_leader_keeps_the_lease_until_it_releases_it() -> None:
    leases = FakeLeases()
    a = LeaseElector(client.ApiClient(), NS, "a", FAST, leases=leases)
    assert asyncio.run(a.acquire())
    stop = asyncio.Event()
    stop.set()
    run_hold(a, stop)
    assert a.leading
    assert leases.holder == "a"
    asyncio.run(a.release())
    assert leases.holder is None


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        (LeaseSettings(lease_s=15, renew_deadline_s=15, retry_s=2), "renew deadline"),
        (LeaseSettings(lease_s=15, renew_deadline_s=10, retry_s=10), "retry period"),
        (LeaseSettings(lease_s=15, renew_deadline_s=10, retry_s=0), "retry period"),
        (LeaseSettings(lease_s=0.5, renew_deadline_s=0.2, retry_s=0.1), "at least 1 s"),
    ],
)
def test_inconsistent_durations_are_named(settings: LeaseSettings, named: str) -> None:
    problem = settings.problem()
    assert problem is not None and named in problem
    assert SETTINGS.problem() is None


def test_the_command_refuses_inconsistent_durations_with_one_line() -> None:
    result = CliRunner().invoke(
        app, ["operator", "run", "--lease-duration", "5", "--renew-deadline", "8"]
    )
    assert result.exit_code == 2
    assert "renew deadline must be less than the lease duration" in result.output
    assert "Traceback" not in result.output
