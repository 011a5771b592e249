"""A Hypothesis state machine over the simulated cluster: external stimuli, checked every step.

``@initialize`` draws a cluster, its models, the policy and the per-operation fault rates; the
rules are only what the world does to the controller — create and delete requesters of several
models, scale a model's replica set, change an InferenceServerConfig, lose, cordon and restore
nodes, crash instances and launchers, restart the controller, switch faults on and off — and
"advance simulated time". After every step the safety checkers of :mod:`fma.bench.invariants`
judge the trace. At the end faults are turned off: every scheduled requester must become ready
within the liveness bound, and once everything is scaled away nothing may be left but sleepers.

A failure prints the steps as a program, the sim seed, and a one-line replay command.
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

from fma.adapters.sim.cluster import SimCluster
from fma.adapters.sim.controller import SimController
from fma.adapters.sim.liveness import Phases, is_quiet, start_phases
from fma.adapters.sim.runner import build_nodes, install_launcher_configs, policy_of
from fma.adapters.sim.state import SimNode, SimRequester, SimState
from fma.adapters.sim.trace import Trace
from fma.api.latency import GIB
from fma.api.scenario import Scenario
from fma.bench import invariants
from fma.core.model import ProviderKind, ServerSpec
from tests.property.strategies import machine_scenarios

SAFETY = (
    invariants.gpu_exclusive_awake,
    invariants.gpu_memory_fits,
    invariants.gpu_single_requester,
    invariants.one_provider_per_requester,
    invariants.host_memory_fits,
)
DRAIN_S_MAX = 30 * 86400.0
"""How long the final drain may take in sim time before it counts as never quiet."""
STEPS_MAX = 40


def replay_line(test: str) -> str:
    profile = os.environ.get("HYPOTHESIS_PROFILE", "dev")
    seed = os.environ.get("FMA_HYPOTHESIS_SEED")
    tail = f" --hypothesis-seed={seed}" if seed else ""
    return f"replay: HYPOTHESIS_PROFILE={profile} .venv/bin/pytest -q '{test}'{tail}"


class ClusterMachine(RuleBasedStateMachine):
    requesters = Bundle("requesters")

    def __init__(self) -> None:
        super().__init__()
        self.ready_to_run = False

    # --- set-up --------------------------------------------------------------------------------

    @initialize(scenario=machine_scenarios())
    def build(self, scenario: Scenario) -> None:
        note(replay_line("tests/property/test_cluster_machine.py::TestClusterMachine"))
        note(f"sim seed {scenario.seed}; scenario {scenario.model_dump_json()}")
        self.scenario = scenario
        self.env = simpy.Environment()
        state = SimState(nodes=build_nodes(scenario))
        self.cluster = SimCluster(self.env, state, Trace(), scenario.latency)
        self.controller = SimController(self.cluster, policy_of(scenario))
        self.specs = {m.name: self._spec(m.name) for m in scenario.models}
        self.launcher_path = install_launcher_configs(
            scenario, state, lambda name: (self.specs[name], scenario.model(name).gpus)
        )
        self.phases: Phases = start_phases(
            self.env,
            self.cluster,
            self.controller,
            scenario,
            seed=scenario.seed,
            models=[(m.name, int(m.weights_gib * GIB), m.gpus) for m in scenario.models],
            launchers_wanted=scenario.launchers.per_node if self.launcher_path else 0,
        )
        self.lost: dict[str, SimNode] = {}
        self.wanted: dict[str, int] = {m.name: 0 for m in scenario.models}
        self.owned: dict[str, list[str]] = {m.name: [] for m in scenario.models}
        self.uid_seq = 0
        self.cluster.on_requester_gone = self._on_gone
        self.checked = 0
        self.ready_to_run = True

    def _spec(self, name: str, variant: int = 0) -> ServerSpec:
        model = self.scenario.model(name)
        return ServerSpec(
            model=name,
            port=model.port,
            options=(f"--variant={variant}",) if variant else (),
            weights_bytes=int(model.weights_gib * GIB),
            engine_init_s=model.engine_init_s,
        )

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

    # --- stimuli -------------------------------------------------------------------------------

    @rule(target=requesters, model=st.integers(0, 2))
    def create_requester(self, model: int) -> str:
        return self._new_requester(self._model(model))

    @rule(uid=consumes(requesters))
    def delete_requester(self, uid: str) -> None:
        self.cluster.delete_requester(uid, "deleted by a user")

    @rule(model=st.integers(0, 2), replicas=st.integers(0, 4))
    def scale(self, model: int, replicas: int) -> None:
        name = self._model(model)
        self.wanted[name] = replicas
        members = self.owned[name]
        while len(members) < replicas:
            members.append(self._new_requester(name))
        for uid in members[replicas:]:
            self.cluster.delete_requester(uid, "scaled down")

    @rule(model=st.integers(0, 2), variant=st.integers(0, 2))
    def change_server_spec(self, model: int, variant: int) -> None:
        """A new ISC spec (launcher path) or server patch (direct path) for a model."""
        name = self._model(model)
        self.specs[name] = self._spec(name, variant)
        state = self.cluster.state
        if name in state.iscs:
            state.iscs[name] = replace(state.iscs[name], spec=self.specs[name])
            for node in list(state.nodes):
                self.cluster.touch(node)

    @rule(index=st.integers(0, 7))
    def lose_node(self, index: int) -> None:
        name = self._node(index)
        if name is not None:
            self.lost[name] = self.cluster.state.nodes[name]
            self.cluster.lose_node(name)

    @rule(index=st.integers(0, 7))
    def restore_node(self, index: int) -> None:
        name = self._node(index, present=False)
        if name is not None:
            self.cluster.restore_node(self.lost.pop(name))

    @rule(index=st.integers(0, 7), cordon=st.booleans())
    def cordon_node(self, index: int, cordon: bool) -> None:
        name = self._node(index)
        if name is not None:
            (self.cluster.cordon_node if cordon else self.cluster.uncordon_node)(name)

    @rule(index=st.integers(0, 63))
    def crash_instance(self, index: int) -> None:
        live = [(p, iid) for p in self.cluster.state.providers.values() for iid in p.instances]
        if live:
            provider, iid = live[index % len(live)]
            self.cluster.crash_instance(provider, iid)

    @rule(index=st.integers(0, 15))
    def crash_launcher(self, index: int) -> None:
        launchers = [
            p
            for p in self.cluster.state.providers.values()
            if p.kind is ProviderKind.LAUNCHER and not p.deleting and p.ready
        ]
        if launchers:
            self.cluster.crash_launcher(launchers[index % len(launchers)])

    @precondition(lambda self: self.controller.up)
    @rule(down_s=st.sampled_from([0.0, 1.0, 30.0]))
    def restart_controller(self, down_s: float) -> None:
        self.controller.restart(down_s)

    @rule(on=st.booleans())
    def per_operation_faults(self, on: bool) -> None:
        """Wake failures, API errors and watch trouble (as drawn at start) on or off."""
        if on:
            self.phases.injector.active = True
        else:
            self.phases.injector.stop()

    @rule(dt_s=st.sampled_from([0.005, 0.1, 1.0, 5.0, 30.0, 120.0, 900.0]))
    def advance(self, dt_s: float) -> None:
        self.env.run(until=float(self.env.now) + dt_s)

    # --- checks --------------------------------------------------------------------------------

    @invariant()
    def safety(self) -> None:
        if not self.ready_to_run:
            return
        events = self.cluster.trace.events
        if len(events) == self.checked:
            return
        self.checked = len(events)
        for checker in SAFETY:
            assert checker(events) == [], checker.__name__

    def teardown(self) -> None:
        if not self.ready_to_run:
            return
        # Faults off; machines back; liveness from now on.
        for name in list(self.lost):
            self.cluster.restore_node(self.lost.pop(name))
        for name in list(self.cluster.state.nodes):
            self.cluster.uncordon_node(name)
        self.phases.turn_faults_off()
        self.env.run(until=float(self.env.now) + self.phases.bound_s + 1.0)
        events = self.cluster.trace.events
        assert invariants.liveness(events) == [], "liveness"
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
        assert invariants.check_all(events) == []


ClusterMachine.TestCase.settings = settings(
    ClusterMachine.TestCase.settings, stateful_step_count=STEPS_MAX
)
TestClusterMachine = ClusterMachine.TestCase
