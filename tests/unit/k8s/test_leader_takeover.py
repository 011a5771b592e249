"""A candidate with a take-over delay defers to candidates without one: it takes a free Lease
(absent, released or run out) only once it has seen it free that long, so the preferred
replica wins every race it is in, and the deferring one still steps in when none comes."""

import asyncio

from fma.adapters.k8s.leader import LeaseSettings
from tests.unit.k8s.test_leader import SETTINGS, Clock, FakeLeases, elector

DEFERRING = LeaseSettings(
    lease_s=SETTINGS.lease_s,
    renew_deadline_s=SETTINGS.renew_deadline_s,
    retry_s=SETTINGS.retry_s,
    takeover_delay_s=10.0,
)


def test_an_absent_lease_goes_to_the_preferred_candidate_even_if_the_deferring_one_is_first() -> (
    None
):
    leases, clock = FakeLeases(), Clock()
    deferring = elector(leases, "populator", clock, DEFERRING)
    preferred = elector(leases, "controller", clock)
    assert not deferring._try_acquire()
    assert leases.lease is None  # it did not even create it
    clock.now_s += SETTINGS.retry_s
    assert preferred._try_acquire()
    assert leases.holder == "controller"


def test_a_released_lease_goes_to_the_preferred_candidate() -> None:
    leases, clock = FakeLeases(), Clock()
    old = elector(leases, "controller-old", clock)
    deferring = elector(leases, "populator", clock, DEFERRING)
    new = elector(leases, "controller-new", clock)
    assert old._try_acquire()
    old.leading = True
    assert not deferring._try_acquire()
    asyncio.run(old.release())  # a rolling restart: the old replica stops cleanly
    assert not deferring._try_acquire()  # it sees the Lease free, and waits
    clock.now_s += SETTINGS.retry_s
    assert not deferring._try_acquire()
    assert new._try_acquire()
    assert leases.holder == "controller-new"


def test_the_deferring_candidate_steps_in_when_no_preferred_one_comes() -> None:
    leases, clock = FakeLeases(), Clock()
    gone = elector(leases, "controller", clock)
    deferring = elector(leases, "populator", clock, DEFERRING)
    assert gone._try_acquire()
    assert not deferring._try_acquire()  # first sight of the record
    clock.now_s += SETTINGS.lease_s + 0.5  # the holder died: the lease ran out
    assert not deferring._try_acquire()  # free now, as it sees it: the delay starts
    clock.now_s += DEFERRING.takeover_delay_s - 1.0
    assert not deferring._try_acquire()
    clock.now_s += 1.0
    assert deferring._try_acquire()
    assert leases.holder == "populator"


def test_the_delay_starts_over_when_the_lease_is_taken_meanwhile() -> None:
    leases, clock = FakeLeases(), Clock()
    first = elector(leases, "controller-1", clock)
    deferring = elector(leases, "populator", clock, DEFERRING)
    assert first._try_acquire()
    first.leading = True
    asyncio.run(first.release())
    assert not deferring._try_acquire()  # free: the delay starts
    clock.now_s += 5.0
    second = elector(leases, "controller-2", clock)
    assert second._try_acquire()
    assert not deferring._try_acquire()  # held again
    second.leading = True
    asyncio.run(second.release())
    clock.now_s += 6.0  # 11 s since it first saw a free Lease, but only now free again
    assert not deferring._try_acquire()
    clock.now_s += DEFERRING.takeover_delay_s
    assert deferring._try_acquire()


def test_a_negative_delay_is_a_problem() -> None:
    bad = LeaseSettings(takeover_delay_s=-1.0)
    assert bad.problem() == "the take-over delay must not be negative"
