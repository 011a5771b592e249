"""Applies the core's actions to the simulated cluster, with the meaning each action has in
both worlds (:mod:`fma.core.actions`).

Each action is applied at once; what takes time in the world (an engine's start, a sleep, a
wake, a stop) is started here and finished later in simulated time by
:class:`~fma.adapters.sim.cluster.SimCluster`, which shows it as in flight meanwhile. Every
action reports an :class:`~fma.core.outcomes.Outcome` of the taxonomy the operator uses: a gone
target is ``NOT_FOUND``, a write against a changed object ``CONFLICT``, an engine that refuses
to sleep ``INVALID``.
"""

from collections.abc import Sequence
from dataclasses import replace
from typing import assert_never

from fma.adapters.sim.cluster import SimCluster
from fma.adapters.sim.state import SimInstance, SimProvider, relabelled
from fma.api.constants import LABEL_DUAL, LABEL_INSTANCE, LABEL_SLEEPING
from fma.control.reconcile import Decision
from fma.core.actions import (
    Action,
    Bind,
    ConfigKind,
    CreateDirectProvider,
    CreateInstance,
    CreateLauncher,
    DeleteInstance,
    DeleteProvider,
    DeleteRequester,
    EmitEvent,
    LabelProvider,
    RelayReadiness,
    SetActuationPath,
    SetConfigStatus,
    SetRequesterStatus,
    SleepInstance,
    Unbind,
    UpdateRequesterMeta,
    WakeInstance,
)
from fma.core.model import InstanceState, ProviderKind
from fma.core.outcomes import Outcome, OutcomeKind

Result = tuple[OutcomeKind, str | None]
_OK: Result = (OutcomeKind.OK, None)


class SimExecutor:
    def __init__(self, cluster: SimCluster) -> None:
        self.cluster = cluster
        self._waited_s = 0.0

    def take_waited_s(self) -> float:
        """Seconds calls since the last take waited beyond a plain round trip (a launcher's
        DELETE of a sleeper answers once the engine has exited); resets to 0."""
        waited_s, self._waited_s = self._waited_s, 0.0
        return waited_s

    def apply(self, decision: Decision) -> Sequence[Outcome]:
        """Apply the plan's actions in order; stop at the first that fails (Events never
        stop it)."""
        outcomes = []
        for action in decision.plan.actions:
            outcome = self.apply_one(action)
            outcomes.append(outcome)
            if outcome.kind is not OutcomeKind.OK and not isinstance(action, EmitEvent):
                break
        return outcomes

    def apply_one(self, action: Action) -> Outcome:
        kind, error = self._dispatch(action)
        return Outcome(action, kind, error)

    def _dispatch(self, action: Action) -> Result:
        match action:  # the most frequent first
            case EmitEvent():
                self.cluster.trace.record(
                    self.cluster.now_s(),
                    "k8s_event",
                    subject=action.subject.value,
                    key=action.key,
                    reason=action.reason,
                    message=action.message,
                    warning=action.warning,
                )
                return _OK
            case RelayReadiness():
                return self._relay(action)
            case UpdateRequesterMeta():
                return self._update_requester(action)
            case LabelProvider():
                return self._label_provider(action)
            case CreateDirectProvider():
                return self._create_direct_provider(action)
            case Bind():
                return self._bind(action)
            case SetActuationPath():
                provider = self._provider(action.provider)
                if provider is None or provider.bound_requester_uid is None:
                    return OutcomeKind.NOT_FOUND, f"provider {action.provider} is not bound"
                provider.path = action.path
                self.cluster.trace.record(
                    self.cluster.now_s(),
                    "path_changed",
                    provider=provider.name,
                    path=action.path.value,
                )
                return _OK
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
                if action.requester_uid not in self.cluster.state.requesters:
                    return _OK  # gone already: what was asked
                self.cluster.delete_requester(action.requester_uid, action.reason, by="controller")
                return _OK
            case SetRequesterStatus():
                return self._set_status(action)
            case SetConfigStatus():
                return self._set_config_status(action)
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

    def _bind_record(self, provider: SimProvider, uid: str, instance_id: str | None) -> None:
        requester = self.cluster.state.requesters.get(uid)
        provider.bound_requester_uid = uid
        provider.bound_instance_id = instance_id
        provider.bound_s = self.cluster.now_s()
        provider.labels = relabelled(
            provider.labels, {LABEL_DUAL: requester.name if requester is not None else uid}
        )

    def _create_direct_provider(self, action: CreateDirectProvider) -> Result:
        c, now = self.cluster, self.cluster.now_s()
        provider = SimProvider(c.next_name("provider"), action.node, ProviderKind.DIRECT, now)
        self._bind_record(provider, action.requester_uid, action.instance_id)
        provider.path = action.path
        provider.labels = relabelled(provider.labels, {LABEL_SLEEPING: "false"})
        c.add_provider(provider)
        self._record_bind(provider)
        instance = SimInstance(
            action.instance_id, action.spec, action.gpu_uuids, InstanceState.STARTING, now, now
        )
        c.start_instance(provider, instance, pod_start=True)
        return _OK

    def _create_launcher(self, action: CreateLauncher) -> Result:
        c, now = self.cluster, self.cluster.now_s()
        launcher = SimProvider(c.next_name("launcher"), action.node, ProviderKind.LAUNCHER, now)
        launcher.launcher_config = action.launcher_config
        launcher.template_hash = action.template_hash
        lc = c.state.launcher_configs.get(action.launcher_config)
        launcher.max_instances = lc.max_instances if lc is not None else None
        if action.requester_uid is not None:
            self._bind_record(launcher, action.requester_uid, action.instance_id)
            launcher.path = action.path
        c.start_launcher(launcher)
        if action.requester_uid is not None:
            self._record_bind(launcher)
        return _OK

    def _bind(self, action: Bind) -> Result:
        provider = self._provider(action.provider)
        if provider is None or provider.deleting:
            return OutcomeKind.NOT_FOUND, f"provider {action.provider} is gone"
        if provider.bound_requester_uid is not None:
            return OutcomeKind.CONFLICT, f"provider {action.provider} is already bound"
        self._bind_record(provider, action.requester_uid, action.instance_id)
        provider.path = action.path
        self._record_bind(provider)
        self.cluster.touch(provider.node)
        return _OK

    def _unbind(self, action: Unbind) -> Result:
        provider = self._provider(action.provider)
        if provider is None:
            return _OK  # already gone: nothing is bound to it any more
        uid = provider.bound_requester_uid
        provider.bound_requester_uid = None
        provider.bound_instance_id = None
        provider.path = None
        provider.bound_s = None
        provider.routing = None
        provider.labels = relabelled(provider.labels, {LABEL_DUAL: None, LABEL_SLEEPING: "true"})
        self.cluster.trace.record(
            self.cluster.now_s(), "unbind", provider=provider.name, requester=uid
        )
        self.cluster.release_provider(provider)
        self.cluster.touch(provider.node)
        return _OK

    def _create_instance(self, action: CreateInstance) -> Result:
        provider = self._provider(action.provider)
        if provider is None or provider.deleting:
            return OutcomeKind.NOT_FOUND, f"launcher {action.provider} is gone"
        if not provider.ready:
            return OutcomeKind.TRANSIENT, f"launcher {action.provider} is not answering"
        if action.instance_id in provider.instances:
            return OutcomeKind.CONFLICT, f"instance {action.instance_id} exists already"
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
        return _OK

    def _sleep_or_wake(self, action: WakeInstance | SleepInstance) -> Result:
        provider = self._provider(action.provider)
        instance = provider.instances.get(action.instance_id) if provider else None
        if provider is None or instance is None:
            return OutcomeKind.NOT_FOUND, f"instance {action.instance_id} on {action.provider}"
        if isinstance(action, WakeInstance):
            self.cluster.wake_instance(provider, instance)
            return _OK
        if instance.spec.model in self.cluster.sleepless_models:
            self.refuse_sleep(action)
        if not instance.sleepable:
            return OutcomeKind.INVALID, "the engine refused to sleep"
        self.cluster.sleep_instance(provider, instance)
        return _OK

    def refuse_sleep(self, action: SleepInstance) -> None:
        """Record that an engine refused to sleep, as the operator records it on the Pod."""
        provider = self._provider(action.provider)
        instance = provider.instances.get(action.instance_id) if provider else None
        if provider is not None and instance is not None and instance.sleepable:
            instance.sleepable = False
            self.cluster.trace.record(
                self.cluster.now_s(),
                "sleep_refused",
                provider=provider.name,
                instance=instance.instance_id,
            )
            self.cluster.touch(provider.node)

    def _delete_instance(self, action: DeleteInstance) -> Result:
        provider = self._provider(action.provider)
        if provider is None:
            return _OK  # already deleted, which is what was asked
        instance = provider.instances.get(action.instance_id)
        if instance is not None and not instance.state.on_gpus:
            self._waited_s += self.cluster.latency.sleeper_stop_s
        self.cluster.delete_instance(provider, action.instance_id, action.reason)
        return _OK

    def _delete_provider(self, action: DeleteProvider) -> Result:
        provider = self._provider(action.provider)
        if provider is not None:  # absent: already deleted, which is what was asked
            self.cluster.delete_provider(provider, action.reason)
        return _OK

    def _relay(self, action: RelayReadiness) -> Result:
        c = self.cluster
        requester = c.state.requesters.get(action.requester_uid)
        if requester is None:
            return OutcomeKind.NOT_FOUND, f"requester {action.requester_uid} is gone"
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
        return _OK

    def _update_requester(self, action: UpdateRequesterMeta) -> Result:
        requester = self.cluster.state.requesters.get(action.requester_uid)
        if requester is None:
            return OutcomeKind.NOT_FOUND, f"requester {action.requester_uid} is gone"
        requester.labels = relabelled(
            requester.labels, {LABEL_DUAL: action.dual, LABEL_INSTANCE: action.instance_id}
        )
        if requester.finalizer != action.finalizer:
            self.cluster.trace.record(
                self.cluster.now_s(),
                "finalizer",
                requester=requester.uid,
                present=action.finalizer,
            )
            self.cluster.set_requester_finalizer(requester, action.finalizer)
        return _OK

    def _label_provider(self, action: LabelProvider) -> Result:
        provider = self._provider(action.provider)
        if provider is None:
            return OutcomeKind.NOT_FOUND, f"provider {action.provider} is gone"
        provider.labels = relabelled(
            provider.labels, {LABEL_SLEEPING: "true" if action.sleeping else "false"}
        )
        if provider.routing != action.routing:
            provider.routing = action.routing
            self.cluster.trace.record(
                self.cluster.now_s(),
                "routing",
                provider=provider.name,
                instance=provider.bound_instance_id,
                on=action.routing is not None,
            )
        return _OK

    def _set_status(self, action: SetRequesterStatus) -> Result:
        requester = self.cluster.state.requesters.get(action.requester_uid)
        if requester is None:
            return OutcomeKind.NOT_FOUND, f"requester {action.requester_uid} is gone"
        if requester.errors != action.errors:
            requester.errors = action.errors
            self.cluster.trace.record(
                self.cluster.now_s(), "status", requester=requester.uid, errors=list(action.errors)
            )
        return _OK

    def _set_config_status(self, action: SetConfigStatus) -> Result:
        state = self.cluster.state
        if action.kind is ConfigKind.ISC:
            isc = state.iscs.get(action.name)
            if isc is None:
                return OutcomeKind.NOT_FOUND, f"InferenceServerConfig {action.name} is gone"
            state.iscs[action.name] = replace(isc, errors=action.errors)
        else:
            lc = state.launcher_configs.get(action.name)
            if lc is None:
                return OutcomeKind.NOT_FOUND, f"LauncherConfig {action.name} is gone"
            state.launcher_configs[action.name] = replace(lc, errors=action.errors)
        self.cluster.trace.record(
            self.cluster.now_s(),
            "config_status",
            config=f"{action.kind.value}/{action.name}",
            errors=list(action.errors),
        )
        return _OK
