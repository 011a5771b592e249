"""The direct path (milestone 2): a requester's server patch made into its provider Pod.

The *nominal provider* (upstream's term) is the requester Pod with its server patch applied:
the requester's labels and namespace, none of its annotations or server-set metadata, its
spec without what is individual to a Pod, then the annotation
``dual-pods.llm-d.ai/server-patch`` rendered as a Go template (``missingkey=error``, data
``.NodeName`` and ``.LocalVolume``, which is always empty), read as YAML and applied as a
strategic merge patch (:mod:`.smp`). Its hash, with the GPU indices and the node, is the
identity of the provider: a sleeping provider with the same hash is a hot hit.

The provider Pod is the nominal one plus what binds it to its requester and its GPUs.
"""

import copy
from collections.abc import Mapping, Sequence
from typing import Any, Final

import yaml

from fma.adapters.k8s.render.binding import Binding
from fma.adapters.k8s.render.errors import RenderError
from fma.adapters.k8s.render.flags import MODEL_FLAGS, flag_value, gpu_memory_utilization
from fma.adapters.k8s.render.hashing import canonical_json, sha256_base64
from fma.adapters.k8s.render.names import generate_name, label_value_problem
from fma.adapters.k8s.render.podspec import (
    deindividualized,
    find_container,
    has_env,
    is_port_number,
    pod_problems,
    set_env,
    zero_gpus,
)
from fma.adapters.k8s.render.smp import PatchError, strategic_merge
from fma.api.constants import (
    ANN_ACCELERATORS,
    ANN_ACTUATION_PATH,
    ANN_BOUND_AT,
    ANN_INSTANCE_ID,
    ANN_NOMINAL,
    ANN_REQUESTER,
    ANN_SERVER_PATCH,
    ANN_WEIGHTS_SIZE,
    CONTAINER_INFERENCE_SERVER,
    ENV_CUDA_VISIBLE_DEVICES,
    ENV_NVIDIA_VISIBLE_DEVICES,
    FINALIZER_PROVIDER,
    LABEL_DUAL,
    LABEL_HOSTNAME,
    LABEL_SLEEPING,
    SERVER_PATCH_LOCAL_VOLUME,
    SERVER_PATCH_NODE_NAME,
)
from fma.core.gpumap import cuda_visible_devices
from fma.core.model import ServerSpec
from fma.modelservice.gotemplate import BUILTINS, TemplateError, render

Obj = dict[str, Any]

SERVER_CONTAINER_PATH: Final = f"spec.containers[{CONTAINER_INFERENCE_SERVER}]"
READINESS_PORT_PATH: Final = f"{SERVER_CONTAINER_PATH}.readinessProbe.httpGet.port"
HTTP_PORT: Final = 80
"""What a readinessProbe port named ``http`` or ``HTTP`` means when no container port has
that name (upstream's rule)."""
PATCH_SET_METADATA: Final = frozenset(
    {
        "name",
        "generateName",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "managedFields",
    }
)
"""Metadata a server patch may not set: FMA names the provider, the API server the rest."""


class _PatchLoader(yaml.SafeLoader):
    """YAML as the API server reads it for a Pod: a date stays a string."""


_PatchLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def describe_pod(pod: Mapping[str, Any]) -> str:
    """``Pod <namespace>/<name>`` (or what names it best), for messages."""
    metadata = pod.get("metadata") or {}
    name = metadata.get("name") or metadata.get("generateName") or "(unnamed)"
    namespace = metadata.get("namespace")
    return f"Pod {namespace}/{name}" if namespace else f"Pod {name}"


def nominal_provider(requester: dict[str, Any], *, node: str) -> dict[str, Any]:
    """The nominal provider of ``requester`` on ``node`` (see the module docstring; the
    spec's ``priority``, which admission computes from the priority class, is dropped too).

    Checked strictly after patching: only Pod fields (unknown fields are errors), containers
    with unique names and images, a container named ``inference-server``, labels and
    annotations of valid syntax, no metadata the API server or FMA sets, and labels that
    differ from the requester's: at least one of the requester's labels must be changed or
    removed (``app: null``), or the provider would match the selector of the requester's
    owner (a ReplicaSet would count it as its own). Raises :class:`RenderError` naming the
    requester, the annotation and the field.
    """
    who = f"{describe_pod(requester)}: annotation {ANN_SERVER_PATCH}"
    metadata = requester.get("metadata") or {}
    source = (metadata.get("annotations") or {}).get(ANN_SERVER_PATCH)
    if not isinstance(source, str) or not source.strip():
        raise RenderError(f"{who}: missing or empty")
    patch = _rendered_patch(source, node, who)
    try:
        nominal = strategic_merge(_base_pod(requester), patch)
    except PatchError as error:
        raise RenderError(f"{who}: {error}") from None
    problems = _nominal_problems(nominal, metadata.get("labels") or {})
    if problems:
        raise RenderError(f"{who}: the patched Pod is invalid: " + "; ".join(problems))
    return nominal


def _rendered_patch(source: str, node: str, who: str) -> Obj:
    data = {SERVER_PATCH_NODE_NAME: node, SERVER_PATCH_LOCAL_VOLUME: ""}
    try:
        text = render(source, data, BUILTINS)
    except TemplateError as error:
        raise RenderError(f"{who}: {error}") from None
    try:
        patch = yaml.load(text, Loader=_PatchLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as error:
        raise RenderError(f"{who}: not YAML: {_yaml_problem(error)}") from None
    if patch is None:
        return {}
    if not isinstance(patch, dict):
        raise RenderError(f"{who}: must render to a map (a patch of the Pod)")
    return patch


def _yaml_problem(error: yaml.YAMLError) -> str:
    if isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
        return f"line {error.problem_mark.line + 1}: {error.problem}"
    return " ".join(str(error).split())


def _base_pod(requester: Mapping[str, Any]) -> Obj:
    metadata = requester.get("metadata") or {}
    base_metadata: Obj = {"labels": copy.deepcopy(dict(metadata.get("labels") or {}))}
    if metadata.get("namespace"):
        base_metadata["namespace"] = metadata["namespace"]
    spec = deindividualized(requester.get("spec") or {})
    # Admission computed it from the priority class; creating a Pod whose class the patch
    # changed, with the old number, would be refused.
    spec.pop("priority", None)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": base_metadata, "spec": spec}


def _nominal_problems(nominal: Obj, requester_labels: Mapping[str, str]) -> list[str]:
    problems = pod_problems(nominal)
    if "status" in nominal:
        problems.append("status: must not be set by a server patch")
    metadata = nominal.get("metadata")
    if isinstance(metadata, dict):
        problems += [
            f"metadata.{key}: must not be set by a server patch"
            for key in sorted(PATCH_SET_METADATA & set(metadata))
        ]
    spec = nominal.get("spec")
    if isinstance(spec, dict) and find_container(spec, CONTAINER_INFERENCE_SERVER) is None:
        problems.append(f"spec.containers: no container named {CONTAINER_INFERENCE_SERVER}")
    if problems:
        return problems
    labels = nominal["metadata"].get("labels") or {}
    if requester_labels and all(labels.get(k) == v for k, v in requester_labels.items()):
        problems.append(
            "metadata.labels: the patch must change or remove at least one of the requester's "
            'labels (e.g. "app": null), or the provider would match the selector of the '
            "requester's owner"
        )
    return problems


def direct_engine_port(pod: dict[str, Any]) -> int:
    """The vLLM port of a direct provider: its ``inference-server`` container's readinessProbe
    httpGet port. A number; or a name: the container port of that name, else digits, else
    ``http``/``HTTP`` meaning 80 (upstream's rule). Raises :class:`RenderError`."""
    who = describe_pod(pod)
    server = find_container(pod.get("spec") or {}, CONTAINER_INFERENCE_SERVER)
    if server is None:
        raise RenderError(
            f"{who}: spec.containers: no container named {CONTAINER_INFERENCE_SERVER}"
        )
    probe = server.get("readinessProbe")
    http_get = probe.get("httpGet") if isinstance(probe, dict) else None
    if not isinstance(http_get, dict) or "port" not in http_get:
        raise RenderError(
            f"{who}: {READINESS_PORT_PATH}: required: it says which port vLLM serves on"
        )
    port = http_get["port"]
    if isinstance(port, str):
        port = _named_port(server, port)
    if not is_port_number(port):
        raise RenderError(f"{who}: {READINESS_PORT_PATH}: {port!r} is not a port")
    assert isinstance(port, int)
    return port


def _named_port(container: Obj, name: str) -> int | str:
    for declared in container.get("ports") or []:
        if isinstance(declared, dict) and declared.get("name") == name:
            number = declared.get("containerPort")
            return number if isinstance(number, int) else name
    if name.isdigit():
        return int(name)
    if name in ("http", "HTTP"):
        return HTTP_PORT
    return name


def nominal_hash(nominal: dict[str, Any], gpu_indices: Sequence[int], node: str) -> str:
    """Upstream's ``nominal`` hash: unpadded base64 of SHA-256 over the canonical JSON of the
    nominal Pod, ``;gpus=<indices, comma-joined>`` and ``;node=<node>``. Map order does not
    matter (canonical JSON sorts keys); list order does."""
    return sha256_base64(
        canonical_json(nominal), ";gpus=", cuda_visible_devices(gpu_indices), ";node=", node
    )


def direct_server_spec(
    requester: dict[str, Any], *, node: str, gpu_indices: Sequence[int], weights_bytes: int
) -> ServerSpec:
    """The identity of the provider ``requester`` would get on ``node`` with those GPUs.

    ``model`` is the ``--model`` in the ``inference-server`` container's command and args,
    else the argument after ``serve`` (``vllm serve <model>``), else its image; ``port`` is
    :func:`direct_engine_port`; the one option ``--nominal=<hash>`` makes the instance
    identity that of the nominal Pod, GPUs and node; ``gpu_memory_utilization`` is from
    ``--gpu-memory-utilization`` (default 0.9). Raises :class:`RenderError`.
    """
    nominal = nominal_provider(requester, node=node)
    server = find_container(nominal["spec"], CONTAINER_INFERENCE_SERVER)
    assert server is not None  # nominal_provider checked it
    argv = [*(server.get("command") or []), *(server.get("args") or [])]
    who = f"{describe_pod(requester)}: {SERVER_CONTAINER_PATH}"
    try:
        model = flag_value(argv, MODEL_FLAGS) or served_model(argv) or server["image"]
        share = gpu_memory_utilization(argv)
    except ValueError as error:
        raise RenderError(f"{who}.args: {error}") from None
    return ServerSpec(
        model=model,
        port=direct_engine_port(nominal),
        options=("--nominal=" + nominal_hash(nominal, gpu_indices, node),),
        env=(),
        weights_bytes=weights_bytes,
        gpu_memory_utilization=share,
    )


def served_model(argv: Sequence[str]) -> str | None:
    if "serve" not in argv:
        return None
    index = list(argv).index("serve") + 1
    if index < len(argv) and not argv[index].startswith("-"):
        return argv[index]
    return None


def direct_provider_pod(
    requester: dict[str, Any],
    *,
    node: str,
    gpu_uuids: Sequence[str],
    gpu_indices: Sequence[int],
    binding: Binding,
) -> dict[str, Any]:
    """The provider Pod created for ``requester``, already bound to it.

    The nominal provider, then: ``nodeSelector[kubernetes.io/hostname]=<node>``; on the
    ``inference-server`` container ``CUDA_VISIBLE_DEVICES=<indices>`` (overwriting),
    ``NVIDIA_VISIBLE_DEVICES=all`` unless the patch sets it (so that the container sees the
    node's GPUs without asking the device plugin for any), and ``nvidia.com/gpu: 0`` in its
    requests and limits; ``generateName: <requester name>-dual-``; the provider finalizer;
    the annotations ``requester``, ``nominal``, ``accelerators`` (comma-joined UUIDs),
    ``instance-id``, ``actuation-path`` and ``bound-at``, and the requester's ``weights-size``
    when it has one (the sleeping budget needs it once the requester is gone); the labels
    ``dual=<requester name>`` and ``sleeping=false``. Raises :class:`RenderError`.
    """
    nominal = nominal_provider(requester, node=node)
    name_problem = label_value_problem(binding.requester_name)
    if name_problem:
        raise RenderError(
            f"{describe_pod(requester)}: the name is the provider's {LABEL_DUAL} label, which "
            f"{name_problem}"
        )
    pod = copy.deepcopy(nominal)
    spec = pod["spec"]
    spec["nodeSelector"] = {**(spec.get("nodeSelector") or {}), LABEL_HOSTNAME: node}
    server = find_container(spec, CONTAINER_INFERENCE_SERVER)
    assert server is not None  # nominal_provider checked it
    set_env(server, ENV_CUDA_VISIBLE_DEVICES, cuda_visible_devices(gpu_indices))
    if not has_env(server, ENV_NVIDIA_VISIBLE_DEVICES):
        set_env(server, ENV_NVIDIA_VISIBLE_DEVICES, "all")
    zero_gpus(server, create=True)
    metadata = pod["metadata"]
    metadata["generateName"] = generate_name("", binding.requester_name, "-dual-")
    finalizers = list(metadata.get("finalizers") or [])
    if FINALIZER_PROVIDER not in finalizers:
        finalizers.append(FINALIZER_PROVIDER)
    metadata["finalizers"] = finalizers
    metadata["annotations"] = {
        **(metadata.get("annotations") or {}),
        ANN_REQUESTER: binding.requester_annotation,
        ANN_NOMINAL: nominal_hash(nominal, gpu_indices, node),
        ANN_ACCELERATORS: ",".join(gpu_uuids),
        ANN_INSTANCE_ID: binding.instance_id,
        ANN_ACTUATION_PATH: str(binding.path),
        ANN_BOUND_AT: binding.bound_at,
    }
    weights = (requester.get("metadata", {}).get("annotations") or {}).get(ANN_WEIGHTS_SIZE)
    if weights is not None:
        metadata["annotations"][ANN_WEIGHTS_SIZE] = weights
    metadata["labels"] = {
        **(metadata.get("labels") or {}),
        LABEL_DUAL: binding.requester_name,
        LABEL_SLEEPING: "false",
    }
    return pod
