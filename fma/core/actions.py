"""The closed set of things a decision may ask an adapter to do, and what each one means.

Each action is a frozen dataclass; :data:`Action` is their union. Executors dispatch with
``match`` and end with ``assert_never``, so adding an action without teaching every executor
fails the type check. A :class:`Plan` is the whole output of one reconcile.

**Completion.** Every action has one meaning, the same in the simulator and the operator, and
says when it is *done* — when the executor may report it as applied and move on to the next
action of the plan. No action blocks a node's reconcile for longer than one API write or one
short HTTP call: what takes longer (an engine's start, a wake, a sleep, a Pod becoming Ready)
is *started* by the action and *finished* by an observed change, which re-queues the node. A
wake or a sleep in flight shows in the snapshot as ``InstanceState.WAKING`` /
``InstanceState.FALLING_ASLEEP``, and the decisions wait for its end instead of acting twice.

**Order.** An executor applies a plan's actions in order and stops at the first one that fails
(:mod:`fma.core.outcomes`); later actions of a plan may rely on earlier ones having been done.
:class:`EmitEvent` alone is best-effort: its failure never stops a plan.

**The requester's finalizer.** FMA's finalizer on a requester Pod holds the Pod — and with it
the GPUs the scheduler gave it — while an instance that served it may still use them. It is
added before the requester is first bound and released (:class:`UpdateRequesterMeta`) once the
requester is being deleted, no provider is bound to it and nothing is loaded, serving or moving
weights on its GPUs: after the sleep has finished or the instance is gone. A binding is removed
(:class:`Unbind`) only once the bound instance is asleep or gone, so a provider stays claimed
while its weights move.

Preconditions: an executor applies a plan against the snapshot it was made from, so Pod writes
carry that snapshot's UID and resourceVersion, and a write to an object that changed since is a
conflict, not a blind overwrite. One exception: :class:`UpdateRequesterMeta` does not depend on
the requester's status, so a change of the status alone (the kubelet's; with the GPU list the
operator itself annotates) is no conflict for it.
"""

from dataclasses import dataclass
from enum import StrEnum

from fma.core.model import ActuationPath, Routing, ServerSpec


@dataclass(frozen=True, slots=True)
class CreateDirectProvider:
    """Create a vLLM Pod on ``node`` running ``spec`` on ``gpu_uuids``, already bound.

    The Pod carries the binding record, the path, the bound time, the ``dual`` label and the
    provider finalizer. Done when the API server accepts the Pod; the engine's start is
    observed later (its instance ``STARTING``, then ``AWAKE``).
    """

    requester_uid: str
    node: str
    gpu_uuids: tuple[str, ...]
    spec: ServerSpec
    instance_id: str
    path: ActuationPath


@dataclass(frozen=True, slots=True)
class CreateLauncher:
    """Create a launcher Pod on ``node``. Done when the API server accepts it; its readiness is
    observed later.

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
    """Record on ``provider`` that it serves ``requester_uid`` with ``instance_id``: one Pod
    update writing the binding record, the path, the bound time and the ``dual`` label. Done
    when the API server accepts it (a changed Pod is a conflict)."""

    provider: str
    requester_uid: str
    instance_id: str
    path: ActuationPath


@dataclass(frozen=True, slots=True)
class SetActuationPath:
    """Correct the actuation path recorded on a bound provider (one Pod update): a binding
    made to wake a sleeper whose instance then vanished (its launcher restarted) is served by
    a new instance instead, which is a ``warm`` start, not a ``hot`` one. Done when accepted."""

    provider: str
    path: ActuationPath


@dataclass(frozen=True, slots=True)
class Unbind:
    """Remove the binding from ``provider``: one Pod update removing the binding record, its
    bookkeeping, the ``dual`` label, any routing metadata and the provider finalizer, and
    setting ``sleeping=true``. Decided only once the bound instance is asleep or gone (or the
    provider is being deleted). Done when the API server accepts it; the provider stays as a
    launcher or a sleeper."""

    provider: str


@dataclass(frozen=True, slots=True)
class CreateInstance:
    """Ask the launcher ``provider`` to start ``instance_id`` running ``spec`` on the GPUs.
    Done when the launcher accepted it; the engine's start is observed later (``STARTING``,
    then ``AWAKE``) through the launcher's watch stream."""

    provider: str
    instance_id: str
    spec: ServerSpec
    gpu_uuids: tuple[str, ...]
    isc_name: str | None = None


@dataclass(frozen=True, slots=True)
class WakeInstance:
    """Start waking ``instance_id`` (vLLM's ``POST /wake_up``). Done as soon as the wake is
    started: the instance is ``WAKING`` until its end is observed (``AWAKE``, or ``SLEEPING``
    again if it failed)."""

    provider: str
    instance_id: str


@dataclass(frozen=True, slots=True)
class SleepInstance:
    """Start a level-1 sleep of ``instance_id`` (weights to host memory, ``POST /sleep``).
    Done as soon as the sleep is started: the instance is ``FALLING_ASLEEP`` until its end is
    observed (``SLEEPING``, or ``AWAKE`` again if it failed). An engine that refuses to sleep
    is recorded as not sleepable and is deleted instead on a later pass."""

    provider: str
    instance_id: str


@dataclass(frozen=True, slots=True)
class DeleteInstance:
    """Ask the launcher ``provider`` to stop and forget ``instance_id``. A sleeper (it holds
    only a residue and exits at once) is gone when the launcher answers; one that was on its
    GPUs is ``STOPPING`` — holding them — until it is seen gone. An unknown instance is
    already done."""

    provider: str
    instance_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class DeleteProvider:
    """Delete the provider Pod (UID precondition). Done when the API server accepts it; the
    provider finalizer keeps a bound one until it is unbound."""

    provider: str
    reason: str


@dataclass(frozen=True, slots=True)
class DeleteRequester:
    """Delete the requester Pod (UID and resourceVersion preconditions); its owner usually
    makes a new one. Done when the API server accepts it; the requester finalizer holds it
    while its GPUs may still be in use."""

    requester_uid: str
    reason: str


@dataclass(frozen=True, slots=True)
class RelayReadiness:
    """Make the requester's readiness ``ready`` (its SPI's ``become-ready`` /
    ``become-unready``). Done when the requester answered.

    ``actuation`` is set on the first positive relay: the executor also records the actuation on
    the requester (the ``actuated`` annotation) with that path and the latency from the
    requester's start, so it is recorded once, across controller restarts too.
    """

    requester_uid: str
    ready: bool
    actuation: ActuationPath | None = None


@dataclass(frozen=True, slots=True)
class UpdateRequesterMeta:
    """Make FMA's own metadata on the requester equal this, in one Pod update: its finalizer
    (present or not), and the FYI labels naming the provider (``dual``) and the launcher instance
    (``instance``) that serve it. Decided only when the snapshot differs. Done when accepted;
    releasing the finalizer of a requester being deleted lets it go."""

    requester_uid: str
    finalizer: bool
    dual: str | None = None
    instance_id: str | None = None


@dataclass(frozen=True, slots=True)
class LabelProvider:
    """Set the provider's ``sleeping`` label and put on it the routing metadata of the
    InferenceServerConfig it serves (``routing``), or take it off (None), in one Pod update.
    Routing metadata is on a launcher only while its bound instance is awake, and comes off
    before it is put to sleep, so an endpoint picker never routes to a sleeping engine. Decided
    only when the snapshot differs. Done when accepted."""

    provider: str
    sleeping: bool
    routing: Routing | None = None


@dataclass(frozen=True, slots=True)
class SetRequesterStatus:
    """User-facing problems with a requester (the ``status`` annotation); an empty tuple means
    all is well. Decided only when it differs from the status on the Pod."""

    requester_uid: str
    errors: tuple[str, ...]


class ConfigKind(StrEnum):
    ISC = "InferenceServerConfig"
    LAUNCHER_CONFIG = "LauncherConfig"
    POPULATION_POLICY = "LauncherPopulationPolicy"


@dataclass(frozen=True, slots=True)
class SetConfigStatus:
    """Write ``status.errors`` of a configuration object (empty: all is well). Decided only when
    it differs from the status on the object."""

    kind: ConfigKind
    name: str
    errors: tuple[str, ...]


class SubjectKind(StrEnum):
    REQUESTER = "requester"
    """``key`` is the requester's UID."""
    PROVIDER = "provider"
    """``key`` is the provider Pod's name."""
    CONFIG = "config"
    """``key`` is ``<kind>/<name>`` of a configuration object."""


@dataclass(frozen=True, slots=True)
class EmitEvent:
    """A Kubernetes Event about ``subject``, for the user who looks at it (``kubectl describe``):
    what FMA decided and why. Best-effort: a failed Event never stops a plan."""

    subject: SubjectKind
    key: str
    reason: str
    message: str
    warning: bool = False


Action = (
    CreateDirectProvider
    | CreateLauncher
    | Bind
    | SetActuationPath
    | Unbind
    | CreateInstance
    | WakeInstance
    | SleepInstance
    | DeleteInstance
    | DeleteProvider
    | DeleteRequester
    | RelayReadiness
    | UpdateRequesterMeta
    | LabelProvider
    | SetRequesterStatus
    | SetConfigStatus
    | EmitEvent
)


API_WRITES = (
    CreateDirectProvider,
    CreateLauncher,
    Bind,
    SetActuationPath,
    Unbind,
    DeleteProvider,
    DeleteRequester,
    UpdateRequesterMeta,
    LabelProvider,
    SetRequesterStatus,
    SetConfigStatus,
)
"""Actions that are Kubernetes API writes to objects the controller watches (Pods and its
configuration objects), so their effect comes back as a watch event. The rest are HTTP calls
to launchers, engines and requesters, and Events (written, but not watched)."""


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


NOTHING = Plan()
"""The empty plan, shared (plans are frozen): what a node in a steady state gets."""
