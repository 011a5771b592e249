"""The status of the configuration objects: what is wrong with each, written where users look.

Upstream writes configuration errors only on the requesters that trip over them; here every
InferenceServerConfig, LauncherConfig and LauncherPopulationPolicy also carries its own
problems in ``status.errors``, with a warning Event when they appear. An ISC's problems are
its own (found when it was read) and a LauncherConfig it names that is missing or malformed;
a population policy with problems counts no launcher.
"""

from fma.core.actions import Action, ConfigKind, Plan, SetConfigStatus
from fma.core.launchers import launcher_config_of
from fma.core.model import ConfigSnapshot, NodeSnapshot
from fma.core.reasons import narrate


def plan_configs(snapshot: ConfigSnapshot) -> Plan:
    """Status writes for the configuration objects whose status differs from their problems.

    Pure; no I/O; an empty plan once every status is right.
    """
    actions: list[Action] = []
    lookup = NodeSnapshot("", None, launcher_configs=snapshot.launcher_configs)
    for name, isc in sorted(snapshot.iscs.items()):
        lc = launcher_config_of(isc.launcher_config, lookup)
        problems = (*isc.problems, lc) if isinstance(lc, str) else isc.problems
        if problems != isc.errors:
            actions.append(SetConfigStatus(ConfigKind.ISC, name, problems))
    for name, config in sorted(snapshot.launcher_configs.items()):
        if config.problems != config.errors:
            actions.append(SetConfigStatus(ConfigKind.LAUNCHER_CONFIG, name, config.problems))
    for name, policy in sorted(snapshot.population_policies.items()):
        if policy.problems != policy.errors:
            actions.append(SetConfigStatus(ConfigKind.POPULATION_POLICY, name, policy.problems))
    return Plan(narrate(actions))
