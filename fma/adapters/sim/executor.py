"""Applies the core's actions to the simulated cluster (the sim side of ``ActionExecutor``).

Each action is applied at once; long operations (engine start, sleep, wake) are handed to
:class:`~fma.adapters.sim.cluster.SimCluster`, which finishes them later in simulated time.
A handler returns None on success or the reason the action could not be applied.
"""

from collections.abc import Sequence
from typing import assert_never

from fma.adapters.sim.cluster import SimCluster
from fma.adapters.sim.state import SimInstance, SimProvider
from fma.core.actions import (
    Action,
    Bind,
    CreateDirectProvider,
    CreateInstance,
    CreateLauncher,
    DeleteInstance,
    DeleteProvider,
    DeleteRequester,
    Plan,
    RelayReadiness,
    SetRequesterStatus,
    SleepInstance,
    Unbind,
    WakeInstance,
)
from fma.core.model import InstanceState, ProviderKind
from fma.core.ports import Outcome


class SimExecutor:
    def __init__(self, cluster: SimCluster) -> None:
        self.cluster = cluster

    def apply(self, plan: Plan) -> Sequence[Outcome]:
        """Apply actions in order; stop at the first that cannot be applied."""
        outcomes = []
        for action in plan.actions:
            error = self._dispatch(action)
            outcomes.append(Outcome(action, error is None, error, retryable=error is not None))
            if error is not None:
                break
        return outcomes

    def _dispatch(self, action: Action) -> str | None:
        match action:
            case CreateDirectProvider():
                return self._create_direct_provider(action)
            case Bind():
                return self._bind(action)
            case Unbind():
                return self._unbind(action)
            case CreateInstance():
                return self._create_instance(action)
            case WakeInstance() | SleepInstance():
                return self._sleep_or_wake(action)
            case DeleteInstance():
                return self._delete_instance(action)
            case DeleteProvider():
                return self._delete_provider(action)
            case DeleteRequester():
                self.cluster.delete_requester(action.requester_uid, action.reason)
                return None
            case RelayReadiness():
                return self._relay(action)
            case SetRequesterStatus():
                return self._set_status(action)
            case CreateLauncher():
                return self._create_launcher(action)
            case _:
                assert_never(action)

    def _provider(self, name: str) -> SimProvider | None:
        return self.cluster.state.providers.get(name)

    def _record_bind(self, provider: SimProvider) -> None:
        self.cluster.trace.record(
            self.cluster.now_s(),
            "bind",
            provider=provider.name,
            requester=provider.bound_requester_uid,
            instance=provider.bound_instance_id,
            path=provider.path.value if provider.path else None,
        )

    def _create_direct_provider(self, action: CreateDirectProvider) -> str | None:
        c, now = self.cluster, self.cluster.now_s()
        provider = SimProvider(c.next_name("provider"), action.node, ProviderKind.DIRECT, now)
        provider.bound_requester_uid = action.requester_uid
        provider.bound_instance_id = action.instance_id
        provider.path = action.path
        provider.bound_s = now
        c.add_provider(provider)
        self._record_bind(provider)
        instance = SimInstance(
            action.instance_id, action.spec, action.gpu_uuids, InstanceState.STARTING, now, now
        )
        c.start_instance(provider, instance, pod_start=True)
        return None

    def _create_launcher(self, action: CreateLauncher) -> str | None:
        c, now = self.cluster, self.cluster.now_s()
        launcher = SimProvider(c.next_name("launcher"), action.node, ProviderKind.LAUNCHER, now)
        launcher.launcher_config = action.launcher_config
        launcher.template_hash = action.template_hash
        c.start_launcher(launcher)
        if action.requester_uid is not None:
            launcher.bound_requester_uid = action.requester_uid
            launcher.bound_instance_id = action.instance_id
            launcher.path = action.path
            launcher.bound_s = now
            self._record_bind(launcher)
        return None

    def _bind(self, action: Bind) -> str | None:
        provider = self._provider(action.provider)
        if provider is None or provider.bound_requester_uid is not None:
            return f"provider {action.provider} is gone or already bound"
        provider.bound_requester_uid = action.requester_uid
        provider.bound_instance_id = action.instance_id
        provider.path = action.path
        provider.bound_s = self.cluster.now_s()
        self._record_bind(provider)
        self.cluster.touch(provider.node)
        return None

    def _unbind(self, action: Unbind) -> str | None:
        provider = self._provider(action.provider)
        if provider is None:
            return None  # already gone: nothing is bound to it any more
        uid = provider.bound_requester_uid
        provider.bound_requester_uid = None
        provider.bound_instance_id = None
        provider.path = None
        self.cluster.trace.record(
            self.cluster.now_s(), "unbind", provider=provider.name, requester=uid
        )
        self.cluster.release_requester_if_deleting(uid)
        if provider.deleting:
            self.cluster.delete_provider(provider, "finalizer released")
        return None

    def _create_instance(self, action: CreateInstance) -> str | None:
        provider = self._provider(action.provider)
        if provider is None:
            return f"launcher {action.provider} is gone"
        now = self.cluster.now_s()
        instance = SimInstance(
            action.instance_id,
            action.spec,
            action.gpu_uuids,
            InstanceState.STARTING,
            now,
            now,
            action.isc_name,
        )
        self.cluster.start_instance(provider, instance, pod_start=False)
        return None

    def _sleep_or_wake(self, action: WakeInstance | SleepInstance) -> str | None:
        provider = self._provider(action.provider)
        instance = provider.instances.get(action.instance_id) if provider else None
        if provider is None or instance is None:
            return f"instance {action.instance_id} on {action.provider} is gone"
        if isinstance(action, WakeInstance):
            self.cluster.wake_instance(provider, instance)
        else:
            self.cluster.sleep_instance(provider, instance)
        return None

    def _delete_instance(self, action: DeleteInstance) -> str | None:
        provider = self._provider(action.provider)
        if provider is not None:  # absent: already deleted, which is what was asked
            self.cluster.delete_instance(provider, action.instance_id, action.reason)
        return None

    def _delete_provider(self, action: DeleteProvider) -> str | None:
        provider = self._provider(action.provider)
        if provider is not None:  # absent: already deleted, which is what was asked
            self.cluster.delete_provider(provider, action.reason)
        return None

    def _relay(self, action: RelayReadiness) -> str | None:
        c = self.cluster
        requester = c.state.requesters.get(action.requester_uid)
        if requester is None:
            return f"requester {action.requester_uid} is gone"
        if action.actuation is not None and not requester.actuated:
            requester.actuated = True
            started_s = requester.started_s if requester.started_s is not None else c.now_s()
            c.trace.record(
                c.now_s(),
                "actuation",
                requester=requester.uid,
                path=action.actuation.value,
                latency_s=round(c.now_s() - started_s, 6),
                model=requester.model,
            )
        c.set_ready(requester, action.ready)
        return None

    def _set_status(self, action: SetRequesterStatus) -> str | None:
        requester = self.cluster.state.requesters.get(action.requester_uid)
        if requester is not None and requester.errors != action.errors:
            requester.errors = action.errors
            self.cluster.trace.record(
                self.cluster.now_s(), "status", requester=requester.uid, errors=list(action.errors)
            )
        return None
