"""A Hypothesis state machine over the simulated cluster: external stimuli, checked every step.

``@initialize`` draws a cluster, its models, the policy and the per-operation fault rates; the
rules are only what the world does to the controller — create and delete requesters of several
models, scale a model's replica set, change an InferenceServerConfig, change the LauncherConfig's
template and the population counts, delete and restore an ISC or the LauncherConfig, lose,
cordon, restore and blip nodes NotReady, crash instances and launchers, restart the controller,
switch faults on and off — and "advance simulated time". After every step every safety checker
of :mod:`fma.bench.invariants` judges the trace up to the current time (readiness that should
have been withdrawn is a breach once its grace is over, even with no event to show it). At the
end faults are turned off and the configuration restored: every scheduled requester must become
ready within the liveness bound, and once everything is scaled away nothing may be left but
sleepers.

A failure prints the steps as a program, the sim seed, and a one-line replay command.
:class:`ClusterMachine` is also what the mutation canaries run (``test_mutants.py``).
"""

import os
from dataclasses import replace

import simpy
from hypothesis import note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    precondition,
    rule,
)

from fma.adapters.sim.controller import SimController
from fma.adapters.sim.liveness import Phases, is_quiet, start_phases
from fma.adapters.sim.runner import (
    LAUNCHER_CONFIG,
    install_launcher_configs,
    new_cluster,
    policy_of,
    spec_of,
)
from fma.adapters.sim.state import SimNode, SimRequester
from fma.adapters.sim.trace import Trace
from fma.api.scenario import Scenario
from fma.bench import invariants
from fma.core.model import IscSpec, ProviderKind, ServerSpec
from tests.property.strategies import machine_scenarios

DRAIN_S_MAX = 30 * 86400.0
"""How long the final drain may take in sim time before it counts as never quiet."""
STEPS_MAX = 40
chaos = precondition(lambda self: self.chaotic)
"""A rule that disturbs the cluster (configuration, the platform, faults): enabled only while
the machine is chaotic, so that calm stretches let demand build the deep states — sleepers
beside awake engines, full launchers, tight memory — that most bugs need."""
AFTER_S = st.sampled_from([0.0, 1.0, 30.0, 120.0, 600.0])
"""Time a workload stimulus lets pass: most bugs need an engine to have started, or slept."""


def replay_line(test: str) -> str:
    profile = os.environ.get("HYPOTHESIS_PROFILE", "dev")
    seed = os.environ.get("FMA_HYPOTHESIS_SEED")
    tail = f" --hypothesis-seed={seed}" if seed else ""
    return f"replay: HYPOTHESIS_PROFILE={profile} .venv/bin/pytest -q '{test}'{tail}"


class ClusterMachine(RuleBasedStateMachine):
    requesters = Bundle("requesters")
    examples = 0
    """Machines built so far in this process (the mutation canaries report how many it took)."""

    def __init__(self) -> None:
        super().__init__()
        self.ready_to_run = False
        self.chaotic = False
        type(self).examples += 1

    # --- set-up --------------------------------------------------------------------------------

    @initialize(scenario=machine_scenarios())
    def build(self, scenario: Scenario) -> None:
        note(replay_line("tests/property/test_cluster_machine.py::TestClusterMachine"))
        note(f"sim seed {scenario.seed}; scenario {scenario.model_dump_json()}")
        self.scenario = scenario
        self.env = simpy.Environment()
        self.cluster = new_cluster(scenario, self.env, Trace(), seed=scenario.seed)
        self.controller = SimController(self.cluster, policy_of(scenario))
        self.specs = {m.name: self._spec(m.name) for m in scenario.models}
        self.launcher_path = install_launcher_configs(
            scenario, self.cluster.state, lambda name: (self.specs[name], scenario.model(name).gpus)
        )
        state = self.cluster.state
        self.configs = (dict(state.iscs), dict(state.launcher_configs), dict(state.launcher_policy))
        self.phases: Phases = start_phases(
            self.env,
            self.cluster,
            self.controller,
            scenario,
            seed=scenario.seed,
            launchers_wanted=scenario.launchers.per_node if self.launcher_path else 0,
            faults_off_by_itself=False,
        )
        self.controller.start()
        self.lost: dict[str, SimNode] = {}
        self.wanted: dict[str, int] = {m.name: 0 for m in scenario.models}
        self.owned: dict[str, list[str]] = {m.name: [] for m in scenario.models}
        self.uid_seq = 0
        self.cluster.on_requester_gone = self._on_gone
        self.checked = (0, -1.0)
        self.chaotic = False
        self.ready_to_run = True

    def _spec(self, name: str, variant: int = 0) -> ServerSpec:
        spec, _ = spec_of(self.scenario, name)
        return replace(spec, options=(f"--variant={variant}",)) if variant else spec

    def _new_requester(self, model: str) -> str:
        self.uid_seq += 1
        uid = f"req-{self.uid_seq}"
        requester = SimRequester(
            uid,
            uid,
            model,
            self.specs[model],
            float(self.env.now),
            0,
            gpus=self.scenario.model(model).gpus,
            isc_name=model if self.launcher_path else None,
        )
        self.cluster.submit(requester)
        return uid

    def _on_gone(self, requester: SimRequester) -> None:
        """The owner of a replica set replaces members it still wants."""
        members = self.owned.get(requester.model)
        if members is None or requester.uid not in members:
            return
        members.remove(requester.uid)
        if len(members) < self.wanted[requester.model]:
            members.append(self._new_requester(requester.model))

    def _model(self, index: int) -> str:
        return self.scenario.models[index % len(self.scenario.models)].name

    def _node(self, index: int, *, present: bool = True) -> str | None:
        names = list(self.cluster.state.nodes) if present else list(self.lost)
        return names[index % len(names)] if names else None

    # --- stimuli: workloads ----------------------------------------------------------------------

    def _then(self, after_s: float) -> None:
        """Let time pass after a stimulus, so that what it starts gets somewhere."""
        if after_s:
            self.env.run(until=float(self.env.now) + after_s)

    @rule(target=requesters, model=st.integers(0, 2), after_s=AFTER_S)
    def create_requester(self, model: int, after_s: float) -> str:
        uid = self._new_requester(self._model(model))
        self._then(after_s)
        return uid

    @rule(uid=consumes(requesters), after_s=AFTER_S)
    def delete_requester(self, uid: str, after_s: float) -> None:
        self.cluster.delete_requester(uid, "deleted by a user")
        self._then(after_s)

    @rule(model=st.integers(0, 2), replicas=st.integers(0, 4), after_s=AFTER_S)
    def scale(self, model: int, replicas: int, after_s: float) -> None:
        name = self._model(model)
        self.wanted[name] = replicas
        members = self.owned[name]
        while len(members) < replicas:
            members.append(self._new_requester(name))
        for uid in members[replicas:]:
            self.cluster.delete_requester(uid, "scaled down")
        self._then(after_s)

    @rule(steps=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 3), AFTER_S), max_size=12))
    def workload(self, steps: list[tuple[int, int, float]]) -> None:
        """A burst of demand: replica sets scaled up and down, with time between — most of what
        a cluster does all day, in one step, so a few hundred examples reach deep states."""
        for model, replicas, after_s in steps:
            self.scale(model, replicas, after_s)

    # --- stimuli: configuration ------------------------------------------------------------------

    @chaos
    @rule(model=st.integers(0, 2), variant=st.integers(0, 2))
    def change_server_spec(self, model: int, variant: int) -> None:
        """A new ISC spec (launcher path) or server patch (direct path) for a model."""
        name = self._model(model)
        self.specs[name] = self._spec(name, variant)
        state = self.cluster.state
        if name in state.iscs:
            state.iscs[name] = replace(state.iscs[name], spec=self.specs[name])
            self.controller.configs_changed()

    @chaos
    @precondition(lambda self: self.launcher_path)
    @rule(template=st.integers(1, 3))
    def change_launcher_template(self, template: int) -> None:
        """The LauncherConfig's Pod template changes: existing launchers become stale."""
        configs = self.cluster.state.launcher_configs
        if LAUNCHER_CONFIG in configs:
            lc = configs[LAUNCHER_CONFIG]
            configs[LAUNCHER_CONFIG] = replace(lc, template_hash=f"template-{template}")
            self.controller.configs_changed()

    @chaos
    @precondition(lambda self: self.launcher_path)
    @rule(count=st.integers(0, 2))
    def set_population(self, count: int) -> None:
        """A LauncherPopulationPolicy asks for ``count`` launchers on every node."""
        self.cluster.state.launcher_policy[LAUNCHER_CONFIG] = count
        self.controller.configs_changed()

    @chaos
    @precondition(lambda self: self.launcher_path)
    @rule(model=st.integers(0, 2), present=st.booleans())
    def delete_or_restore_isc(self, model: int, present: bool) -> None:
        name = self._model(model)
        iscs = self.cluster.state.iscs
        if present:
            iscs.setdefault(name, self._isc(name))
        else:
            iscs.pop(name, None)
        self.controller.configs_changed()

    @chaos
    @precondition(lambda self: self.launcher_path)
    @rule(how=st.sampled_from(["delete", "break", "restore"]))
    def change_launcher_config(self, how: str) -> None:
        """The LauncherConfig is deleted, made malformed, or restored as it was."""
        configs = self.cluster.state.launcher_configs
        original = self.configs[1][LAUNCHER_CONFIG]
        if how == "delete":
            configs.pop(LAUNCHER_CONFIG, None)
        elif how == "break":
            configs[LAUNCHER_CONFIG] = replace(original, problems=("spec.template: invalid",))
        else:
            configs[LAUNCHER_CONFIG] = replace(configs.get(LAUNCHER_CONFIG, original), problems=())
        self.controller.configs_changed()

    def _isc(self, name: str) -> IscSpec:
        return replace(self.configs[0][name], spec=self.specs[name], errors=())

    # --- stimuli: the platform -------------------------------------------------------------------

    @chaos
    @rule(index=st.integers(0, 7))
    def lose_node(self, index: int) -> None:
        name = self._node(index)
        if name is not None:
            self.lost[name] = self.cluster.state.nodes[name]
            self.cluster.lose_node(name)

    @chaos
    @rule(index=st.integers(0, 7))
    def restore_node(self, index: int) -> None:
        name = self._node(index, present=False)
        if name is not None:
            self.cluster.restore_node(self.lost.pop(name))

    @chaos
    @rule(index=st.integers(0, 7), cordon=st.booleans())
    def cordon_node(self, index: int, cordon: bool) -> None:
        name = self._node(index)
        if name is not None:
            (self.cluster.cordon_node if cordon else self.cluster.uncordon_node)(name)

    @chaos
    @rule(index=st.integers(0, 7), ready=st.booleans())
    def node_readiness(self, index: int, ready: bool) -> None:
        """The kubelet stops (or resumes) reporting; the node's Pods run on."""
        name = self._node(index)
        if name is not None:
            self.cluster.set_node_ready(name, ready)

    @rule(index=st.integers(0, 63))
    def crash_instance(self, index: int) -> None:
        """An engine exits (always enabled: crashes need no chaos to happen)."""
        live = [(p, iid) for p in self.cluster.state.providers.values() for iid in p.instances]
        if live:
            provider, iid = live[index % len(live)]
            self.cluster.crash_instance(provider, iid)

    @chaos
    @rule(index=st.integers(0, 15))
    def crash_launcher(self, index: int) -> None:
        launchers = [
            p
            for p in self.cluster.state.providers.values()
            if p.kind is ProviderKind.LAUNCHER and not p.deleting and p.ready
        ]
        if launchers:
            self.cluster.crash_launcher(launchers[index % len(launchers)])

    @chaos
    @precondition(lambda self: self.controller.up)
    @rule(down_s=st.sampled_from([0.0, 1.0, 30.0]))
    def restart_controller(self, down_s: float) -> None:
        self.controller.restart(down_s)

    @chaos
    @rule(on=st.booleans())
    def per_operation_faults(self, on: bool) -> None:
        """Per-operation faults of every kind drawn at start, on or off."""
        if on:
            self.phases.injector.active = True
        else:
            self.phases.injector.stop()

    @rule(on=st.booleans())
    def chaotic_or_calm(self, on: bool) -> None:
        self.chaotic = on

    @rule(dt_s=st.sampled_from([0.005, 0.1, 1.0, 5.0, 30.0, 120.0, 900.0]))
    def advance(self, dt_s: float) -> None:
        self.env.run(until=float(self.env.now) + dt_s)

    # --- checks --------------------------------------------------------------------------------

    @invariant()
    def safety(self) -> None:
        if not self.ready_to_run:
            return
        events = self.cluster.trace.events
        now_s = float(self.env.now)
        if (len(events), now_s) == self.checked:
            return
        self.checked = (len(events), now_s)
        breaches = invariants.check_safety(events, now_s=now_s)
        assert not breaches, breaches[:3]

    def teardown(self) -> None:
        if not self.ready_to_run:
            return
        # Faults off; machines back; configuration restored; liveness from now on.
        for name in list(self.lost):
            self.cluster.restore_node(self.lost.pop(name))
        for name in list(self.cluster.state.nodes):
            self.cluster.uncordon_node(name)
            self.cluster.set_node_ready(name, True)
        state = self.cluster.state
        for name in self.configs[0]:
            state.iscs[name] = state.iscs.get(name) or self._isc(name)
        for name, lc in self.configs[1].items():
            current = state.launcher_configs.get(name)
            state.launcher_configs[name] = (
                replace(current, problems=()) if current is not None else lc
            )
        state.launcher_policy.clear()
        state.launcher_policy.update(self.configs[2])
        self.controller.configs_changed()
        self.phases.turn_faults_off()
        self.env.run(until=float(self.env.now) + self.phases.bound_s + 1.0)
        events = self.cluster.trace.events
        late = invariants.liveness(events)
        assert not late, late[:3]
        # Everything scaled away: it must become quiet and leave only sleepers behind.
        for name in self.wanted:
            self.wanted[name] = 0
        for uid in list(self.cluster.state.requesters):
            self.cluster.delete_requester(uid, "scaled down")
        deadline_s = float(self.env.now) + DRAIN_S_MAX
        while not is_quiet(self.cluster, self.controller) and self.env.now < deadline_s:
            self.env.run(until=float(self.env.now) + 60.0)
        assert is_quiet(self.cluster, self.controller), "never became quiet"
        self.cluster.trace.record(float(self.env.now), "quiescent")
        breaches = invariants.check_all(events)
        assert not breaches, breaches[:3]


ClusterMachine.TestCase.settings = settings(
    ClusterMachine.TestCase.settings, stateful_step_count=STEPS_MAX
)
TestClusterMachine = ClusterMachine.TestCase
