"""What happened to an action, and when to look at the key again: the outcome taxonomy.

An executor reports one :class:`Outcome` per action it tried, in order, and stops at the first
that did not succeed. Every failure is one of five kinds, the same in both worlds, and
:func:`follow_up` turns a plan's outcomes into the queue's next step:

- ``OK`` — done: the plan's own ``requeue_after_s`` follows;
- ``NOT_FOUND`` — the object or instance is gone (404): re-plan at once, without back-off, since
  the world moved;
- ``CONFLICT`` — a precondition failed (409), the snapshot was stale: re-read and re-plan,
  backing off;
- ``TRANSIENT`` — a 5xx, a refused connection, a throttled call: retry with exponential
  back-off;
- ``UNKNOWN`` — a timeout, it may or may not have been applied: refresh the node's caches
  first, then back off;
- ``INVALID`` — the request itself is wrong (400/422): user-facing, so the executor writes a
  status and an Event; retried only at the slowest rate.

Deleting something already gone is ``OK``: it is what was asked.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from fma.core.actions import Action, EmitEvent, Plan


class OutcomeKind(StrEnum):
    OK = "ok"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    TRANSIENT = "transient"
    UNKNOWN = "unknown"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one action: ``kind``, and the error text when it did not succeed."""

    action: Action
    kind: OutcomeKind = OutcomeKind.OK
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.kind is OutcomeKind.OK


@dataclass(frozen=True, slots=True)
class FollowUp:
    """When to look at a key again after applying its plan.

    ``failed`` counts towards the key's exponential back-off (reset by a plan that succeeds);
    ``at_slowest`` backs off at the cap at once; ``resync`` asks the reader to refresh what it
    caches of the key before the retry. ``requeue_after_s`` applies when nothing failed.
    """

    requeue_after_s: float | None = None
    failed: bool = False
    at_slowest: bool = False
    resync: bool = False


def first_failure(outcomes: Sequence[Outcome]) -> Outcome | None:
    """The outcome that stopped the plan (Events never do), or None."""
    ok = OutcomeKind.OK
    return next(
        (o for o in outcomes if o.kind is not ok and not isinstance(o.action, EmitEvent)), None
    )


def follow_up(plan: Plan, outcomes: Sequence[Outcome]) -> FollowUp:
    """The queue's next step for a key whose ``plan`` gave ``outcomes`` (see the module table).

    Pure.
    """
    failure = first_failure(outcomes)
    if failure is None:
        return FollowUp(requeue_after_s=plan.requeue_after_s)
    match failure.kind:
        case OutcomeKind.NOT_FOUND:
            return FollowUp(requeue_after_s=0.0)
        case OutcomeKind.CONFLICT | OutcomeKind.TRANSIENT:
            return FollowUp(failed=True)
        case OutcomeKind.UNKNOWN:
            return FollowUp(failed=True, resync=True)
        case OutcomeKind.INVALID:
            return FollowUp(failed=True, at_slowest=True)
        case OutcomeKind.OK:  # pragma: no cover - first_failure never returns an OK outcome
            raise AssertionError("an OK outcome is not a failure")
