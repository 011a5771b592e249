"""The ports: what the core needs from the world, as narrow ``typing.Protocol``s.

The simulator (:mod:`fma.adapters.sim`) and the operator (:mod:`fma.adapters.k8s`) each
implement them. No adapter type appears in a signature, so the same reconcile shell works in
both worlds: ``snapshot = reader.snapshot(node)``, ``plan = plan_node(snapshot, ...)``,
``executor.apply(plan)``.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from fma.core.actions import Action, Plan
from fma.core.model import NodeSnapshot, ServerSpec


class Clock(Protocol):
    """Time for decisions: ``env.now`` in the simulator, monotonic seconds in the operator."""

    def now_s(self) -> float: ...


class ClusterReader(Protocol):
    """Gathers snapshots; never blocks on the network inside a decision."""

    def node_names(self) -> Sequence[str]: ...

    def snapshot(self, node_name: str) -> NodeSnapshot: ...


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one action: ``ok``, or the error that stopped it (to retry or report)."""

    action: Action
    ok: bool
    error: str | None = None
    retryable: bool = False


class ActionExecutor(Protocol):
    """Applies a plan in order; stops at the first failed action and reports every outcome."""

    def apply(self, plan: Plan) -> Sequence[Outcome]: ...


class LauncherClient(Protocol):
    """The launcher's instance API, as the controller uses it."""

    def list_instances(self, launcher: str) -> Sequence[str]: ...

    def create_instance(
        self, launcher: str, instance_id: str, spec: ServerSpec, gpu_uuids: Sequence[str]
    ) -> None: ...

    def delete_instance(self, launcher: str, instance_id: str) -> None: ...


class EngineClient(Protocol):
    """A vLLM (or stub) engine's sleep endpoints."""

    def is_sleeping(self, provider: str, instance_id: str) -> bool: ...

    def sleep(self, provider: str, instance_id: str) -> None: ...

    def wake(self, provider: str, instance_id: str) -> None: ...


class RequesterClient(Protocol):
    """The requester's SPI: which GPUs it holds, and readiness relay."""

    def accelerators(self, requester_uid: str) -> Sequence[str]: ...

    def relay_readiness(self, requester_uid: str, ready: bool) -> None: ...
