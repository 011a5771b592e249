"""What a requester asks for, resolved: the server spec on its GPUs, and where it came from."""

from dataclasses import dataclass

from fma.core.identity import instance_id
from fma.core.model import Instance, NodeSnapshot, Requester, ServerSpec


@dataclass(frozen=True, slots=True)
class Target:
    """A spec on the requester's GPUs; ISC and LauncherConfig names on the launcher path."""

    spec: ServerSpec
    instance_id: str
    isc_name: str | None = None
    launcher_config: str | None = None


def target_of(requester: Requester, snapshot: NodeSnapshot) -> Target | str:
    """The requester's target, or the user-facing reason it has none.

    The launcher path resolves the requester's InferenceServerConfig; the direct path uses the
    spec rendered from its server patch.
    """
    assert requester.gpu_uuids is not None
    if requester.isc_name is not None:
        isc = snapshot.iscs.get(requester.isc_name)
        if isc is None:
            return f"InferenceServerConfig {requester.isc_name} not found"
        if isc.problems:
            return f"InferenceServerConfig {requester.isc_name} is malformed (see its status)"
        spec = isc.spec
        return Target(spec, instance_id(spec, requester.gpu_uuids), isc.name, isc.launcher_config)
    if requester.spec is None:
        return "no server patch or InferenceServerConfig"
    return Target(requester.spec, instance_id(requester.spec, requester.gpu_uuids))


def obsolete(instance: Instance, snapshot: NodeSnapshot) -> bool:
    """An instance made from an ISC that is gone or whose spec changed since it was made.

    A malformed ISC makes nothing obsolete: a typo in its options must not cost the sleepers
    made before it (they count again once it is fixed)."""
    if instance.isc_name is None:
        return False
    isc = snapshot.iscs.get(instance.isc_name)
    if isc is None:
        return True
    if isc.problems:
        return False
    if isc.spec is instance.spec:
        return False  # made from this very spec: its ID is that spec's (the common case)
    return instance_id(isc.spec, instance.gpu_uuids) != instance.instance_id
