"""The configuration objects' own status: each InferenceServerConfig, LauncherConfig and
LauncherPopulationPolicy carries its problems in ``status.errors``, written (with a Warning
Event) only when they differ from what the status already says."""

from fma.core.actions import ConfigKind, EmitEvent, SetConfigStatus, SubjectKind
from fma.core.configs import plan_configs
from fma.core.model import (
    ConfigProblems,
    ConfigSnapshot,
    IscSpec,
    LauncherConfigSpec,
    ServerSpec,
)

SPEC = ServerSpec(model="m", port=8005)
LC = LauncherConfigSpec("lc", max_instances=2, template_hash="h")


def test_each_kind_gets_its_problems_and_an_event_naming_them() -> None:
    snapshot = ConfigSnapshot(
        iscs={"isc": IscSpec("isc", SPEC, "lc", problems=("spec.modelServerConfig.port: bad",))},
        launcher_configs={
            "lc": LC,
            "lc-bad": LauncherConfigSpec("lc-bad", 1, "", problems=("spec.maxInstances: 0",)),
        },
        population_policies={
            "lpp": ConfigProblems(problems=("spec.enhancedNodeSelector.x.min: not a quantity",))
        },
    )
    actions = plan_configs(snapshot).actions
    statuses = [a for a in actions if isinstance(a, SetConfigStatus)]
    assert statuses == [
        SetConfigStatus(ConfigKind.ISC, "isc", ("spec.modelServerConfig.port: bad",)),
        SetConfigStatus(ConfigKind.LAUNCHER_CONFIG, "lc-bad", ("spec.maxInstances: 0",)),
        SetConfigStatus(
            ConfigKind.POPULATION_POLICY,
            "lpp",
            ("spec.enhancedNodeSelector.x.min: not a quantity",),
        ),
    ]
    events = [a for a in actions if isinstance(a, EmitEvent)]
    assert [(e.subject, e.key, e.reason) for e in events] == [
        (SubjectKind.CONFIG, "InferenceServerConfig/isc", "ConfigurationProblem"),
        (SubjectKind.CONFIG, "LauncherConfig/lc-bad", "ConfigurationProblem"),
        (SubjectKind.CONFIG, "LauncherPopulationPolicy/lpp", "ConfigurationProblem"),
    ]
    assert "not a quantity" in events[2].message


def test_a_status_already_right_is_left_alone_and_a_mended_one_is_cleared() -> None:
    told = ("spec.enhancedNodeSelector.x.min: not a quantity",)
    same = ConfigSnapshot(
        launcher_configs={"lc": LC},
        population_policies={"lpp": ConfigProblems(problems=told, errors=told)},
    )
    assert plan_configs(same).actions == ()
    mended = ConfigSnapshot(population_policies={"lpp": ConfigProblems(errors=told)})
    assert plan_configs(mended).actions == (
        SetConfigStatus(ConfigKind.POPULATION_POLICY, "lpp", ()),
    )
