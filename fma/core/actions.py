"""The closed set of things a decision may ask an adapter to do.

Each action is a frozen dataclass; :data:`Action` is their union. Executors dispatch with
``match`` and end with ``assert_never``, so adding an action without teaching every executor
fails the type check. A :class:`Plan` is the whole output of one reconcile.
"""

from dataclasses import dataclass

from fma.core.model import ActuationPath, ServerSpec


@dataclass(frozen=True, slots=True)
class CreateDirectProvider:
    """Create a vLLM Pod on ``node`` running ``spec`` on ``gpu_uuids``, already bound."""

    requester_uid: str
    node: str
    gpu_uuids: tuple[str, ...]
    spec: ServerSpec
    instance_id: str
    path: ActuationPath


@dataclass(frozen=True, slots=True)
class CreateLauncher:
    """Create a launcher Pod on ``node``.

    When demand made it, it is created already bound to ``requester_uid`` for ``instance_id``
    (binding at creation stops the population policy from counting it as surplus).
    """

    node: str
    launcher_config: str
    template_hash: str
    requester_uid: str | None = None
    instance_id: str | None = None
    path: ActuationPath | None = None


@dataclass(frozen=True, slots=True)
class Bind:
    """Record on ``provider`` that it serves ``requester_uid`` with ``instance_id``."""

    provider: str
    requester_uid: str
    instance_id: str
    path: ActuationPath


@dataclass(frozen=True, slots=True)
class Unbind:
    """Remove the binding record from ``provider``; it stays as a launcher or a sleeper."""

    provider: str


@dataclass(frozen=True, slots=True)
class CreateInstance:
    """Ask the launcher ``provider`` to start ``instance_id`` running ``spec`` on the GPUs."""

    provider: str
    instance_id: str
    spec: ServerSpec
    gpu_uuids: tuple[str, ...]
    isc_name: str | None = None


@dataclass(frozen=True, slots=True)
class WakeInstance:
    provider: str
    instance_id: str


@dataclass(frozen=True, slots=True)
class SleepInstance:
    """Level-1 sleep: weights to host memory."""

    provider: str
    instance_id: str


@dataclass(frozen=True, slots=True)
class DeleteInstance:
    provider: str
    instance_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class DeleteProvider:
    provider: str
    reason: str


@dataclass(frozen=True, slots=True)
class DeleteRequester:
    requester_uid: str
    reason: str


@dataclass(frozen=True, slots=True)
class RelayReadiness:
    """Make the requester's readiness equal the provider's.

    ``actuation`` is set on the first positive relay: the executor records the actuation with
    that path and the latency from the requester's start.
    """

    requester_uid: str
    ready: bool
    actuation: ActuationPath | None = None


@dataclass(frozen=True, slots=True)
class SetRequesterStatus:
    """User-facing problems with a requester; an empty tuple means all is well."""

    requester_uid: str
    errors: tuple[str, ...]


Action = (
    CreateDirectProvider
    | CreateLauncher
    | Bind
    | Unbind
    | CreateInstance
    | WakeInstance
    | SleepInstance
    | DeleteInstance
    | DeleteProvider
    | DeleteRequester
    | RelayReadiness
    | SetRequesterStatus
)


@dataclass(frozen=True, slots=True)
class Plan:
    """The output of one reconcile: actions in order, and when to look again (if ever)."""

    actions: tuple[Action, ...] = ()
    requeue_after_s: float | None = None

    def __add__(self, other: "Plan") -> "Plan":
        if not other.actions and other.requeue_after_s is None:
            return self  # adding nothing: plans are frozen, so sharing is safe (and common)
        if not self.actions and self.requeue_after_s is None:
            return other
        delays = [d for d in (self.requeue_after_s, other.requeue_after_s) if d is not None]
        return Plan(self.actions + other.actions, min(delays) if delays else None)
