"""The data and functions templates see: upstream's variables and ``getPort``.

The variable names are upstream's, so its base configs render unchanged. Two values differ,
on purpose: ``ModelServiceNamespace`` is never empty (the namespace children go to), and
``InferenceModelName`` is the sanitised name the InferenceModel really gets.
"""

from typing import Final

from fma.api.modelservice import ModelService
from fma.modelservice.gotemplate import Function, standard_functions
from fma.modelservice.names import DECODE, PREFILL, ChildNames, model_label
from fma.modelservice.uris import ModelSource

VARIABLE_NAMES: Final = (
    "ModelServiceName",
    "ModelServiceNamespace",
    "ModelName",
    "HFModelName",
    "SanitizedModelName",
    "ModelPath",
    "MountedModelPath",
    "AuthSecretName",
    "EPPServiceName",
    "EPPDeploymentName",
    "PrefillDeploymentName",
    "DecodeDeploymentName",
    "PrefillServiceName",
    "DecodeServiceName",
    "InferencePoolName",
    "InferenceModelName",
)


def template_variables(
    msvc: ModelService, namespace: str, source: ModelSource
) -> dict[str, object]:
    """The variables of ``msvc`` (rendered into ``namespace``), by upstream's names."""
    names = ChildNames(msvc.metadata.name)
    values: dict[str, object] = {
        "ModelServiceName": msvc.metadata.name,
        "ModelServiceNamespace": namespace,
        "ModelName": msvc.spec.routing.model_name,
        "HFModelName": source.hf_model_name,
        "SanitizedModelName": model_label(msvc.spec.routing.model_name),
        "ModelPath": source.model_path,
        "MountedModelPath": source.mounted_model_path,
        "AuthSecretName": msvc.spec.model_artifacts.auth_secret_name or "",
        "EPPServiceName": names.epp_service,
        "EPPDeploymentName": names.epp_deployment,
        "PrefillDeploymentName": names.deployment(PREFILL),
        "DecodeDeploymentName": names.deployment(DECODE),
        "PrefillServiceName": names.service(PREFILL),
        "DecodeServiceName": names.service(DECODE),
        "InferencePoolName": names.inference_pool,
        "InferenceModelName": names.inference_model,
    }
    assert tuple(values) == VARIABLE_NAMES
    return values


def template_functions(msvc: ModelService) -> dict[str, Function]:
    """Go's and Sprig's functions plus ``getPort "<name>"``: the port of that name in
    ``spec.routing.ports``. An unknown name is an error (upstream returns -1, which then
    becomes an invalid port or a broken flag)."""
    ports = {p.name: p.port for p in msvc.spec.routing.ports or []}

    def get_port(name: object) -> int:
        if not isinstance(name, str) or name not in ports:
            known = ", ".join(sorted(ports)) or "none"
            raise ValueError(f"no port named {name!r} in spec.routing.ports (known: {known})")
        return ports[name]

    return {**standard_functions(), "getPort": Function(get_port, 1, 1)}
