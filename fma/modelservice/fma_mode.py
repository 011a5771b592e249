"""FMA mode: serve the decode role from requester Pods and launcher-run vLLM instances.

With ``spec.decode.fma.enabled``, the decode Deployment is not rendered. From the merged decode
Pod (BaseConfig and ModelService, after templating and tensor parallelism) come instead:

- an **InferenceServerConfig** ``<name>-decode``: the model container's args as vLLM options
  (a leading positional model becomes ``--model``; ``--port`` is taken out;
  ``--enable-sleep-mode`` is added, as sleeping is what FMA does), its literal env as
  ``env_vars`` (less ``CUDA_VISIBLE_DEVICES``, which the launcher sets from the requester's
  GPUs), the port the InferencePool targets (else the container's ``--port``, else 8000), and
  the decode Pod labels as routing ``labels``: the controller puts them on a launcher while its
  instance serves, so the InferencePool and the decode Service select exactly the launchers
  that serve;
- a **LauncherConfig** ``<name>-launcher`` (unless ``launcherConfig.name`` names an existing
  one): the launcher (``fma launcher serve``) in container ``inference-server`` with the model
  container's mounts, ``valueFrom`` env and CPU/memory (zero GPUs: a launcher sees the node's),
  the Pod's volumes, tolerations and runtime class;
- optionally a **LauncherPopulationPolicy** ``<name>-launcher`` keeping ``launchersPerNode``
  launchers on every GPU node of the accelerator types with enough GPUs;
- a **Deployment** ``<name>-decode-requester`` of requester Pods, as many as decode replicas:
  annotation ``dual-pods.llm-d.ai/inference-server-config``, one container
  ``inference-server`` running ``fma requester serve``, readiness ``/ready`` on 8080, SPI on
  8081, GPUs = the tensor-parallel size, a little CPU and memory, and the decode Pod's
  scheduling constraints. Their labels (``llm-d.ai/component: fma-requester``) are not the
  serving labels, so nothing routes to a requester.
"""

import copy
import shlex
from dataclasses import dataclass, field
from typing import Any, Final

from pydantic import ValidationError

from fma.api.constants import (
    ANN_ADMIN_PORT,
    ANN_INFERENCE_SERVER_CONFIG,
    API_VERSION,
    CONTAINER_INFERENCE_SERVER,
    ENV_CUDA_VISIBLE_DEVICES,
    ENV_PROBES_PORT,
    ENV_SPI_PORT,
    LABEL_GPU_PRESENT,
    LAUNCHER_PORT,
    REQUESTER_PROBES_PORT,
    REQUESTER_SPI_PORT,
    RESOURCE_GPU,
)
from fma.api.crds import InferenceServerConfig, LauncherConfig, LauncherPopulationPolicy
from fma.api.modelservice import AcceleratorTypes, FMASpec
from fma.modelservice.children import metadata
from fma.modelservice.errors import RenderError
from fma.modelservice.merge import merge, workload_lists
from fma.modelservice.names import ChildNames, requester_labels
from fma.modelservice.parallelism import flag_value, gpu_count, model_container_index

Obj = dict[str, Any]
VLLM_DEFAULT_PORT: Final = 8000
SLEEP_MODE_FLAG: Final = "--enable-sleep-mode"
_FIELD: Final = "spec.decode.fma"
_VLLM_COMMANDS: Final = (("vllm", "serve"), ("python", "-m", "vllm.entrypoints.openai.api_server"))
_COPIED_POD_FIELDS: Final = ("tolerations", "runtimeClassName", "imagePullSecrets")
_REQUESTER_RESOURCES: Final = {
    "requests": {"cpu": "100m", "memory": "250Mi"},
    "limits": {"cpu": "1", "memory": "250Mi"},
}


@dataclass(frozen=True)
class FMAObjects:
    """What FMA mode renders in place of the decode Deployment, in apply order."""

    objects: list[Obj]
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class VllmServer:
    """The decode model container, read as a vLLM server."""

    options: list[str]
    port: int | None
    env_vars: dict[str, str]
    env_from_pod: list[Obj]
    container: Obj


def _fail(message: str, where: str = _FIELD) -> RenderError:
    return RenderError("modelservice", where, message)


def _without_flag(args: list[str], flag: str) -> list[str]:
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == flag:
            skip = True
        elif not arg.startswith(flag + "="):
            out.append(arg)
    return out


def read_vllm_server(container: Obj, warnings: list[str]) -> VllmServer:
    """The vLLM options, port and environment of ``container`` (see the module docstring)."""
    command = [str(c) for c in container.get("command") or []]
    name = container.get("name")
    if command and not any(tuple(command[-len(v) :]) == v for v in _VLLM_COMMANDS):
        warnings.append(
            f"{_FIELD}: container {name}'s command {command} is not run; the launcher runs vLLM"
        )
    args = [str(a) for a in container.get("args") or []]
    port_text = flag_value(args, ("--port",))
    port: int | None = None
    if port_text is not None:
        try:
            port = int(port_text)
        except ValueError:
            raise _fail(f"container {name}'s --port {port_text!r} is not a number") from None
    options = _without_flag(args, "--port")
    if options and not options[0].startswith("-"):
        options = ["--model", *options]
    if SLEEP_MODE_FLAG not in options:
        options.append(SLEEP_MODE_FLAG)  # the controller puts idle instances to sleep
    env_vars: dict[str, str] = {}
    env_from_pod: list[Obj] = []
    for entry in container.get("env") or []:
        if "valueFrom" in entry:
            env_from_pod.append(copy.deepcopy(entry))
        elif entry.get("name") != ENV_CUDA_VISIBLE_DEVICES:
            env_vars[str(entry["name"])] = str(entry.get("value", ""))
    return VllmServer(options, port, env_vars, env_from_pod, container)


def _isc(
    names: ChildNames,
    namespace: str,
    server: VllmServer,
    port: int,
    labels: dict[str, str],
    lc_name: str,
) -> Obj:
    config: Obj = {"port": port, "options": shlex.join(server.options)}
    if server.env_vars:
        config["env_vars"] = dict(server.env_vars)
    config["labels"] = dict(labels)
    return {
        "apiVersion": API_VERSION,
        "kind": "InferenceServerConfig",
        "metadata": metadata(names.inference_server_config, namespace),
        "spec": {"modelServerConfig": config, "launcherConfigName": lc_name},
    }


def _launcher_config(
    names: ChildNames, namespace: str, spec: FMASpec, server: VllmServer, pod: Obj
) -> Obj:
    container = server.container
    resources = copy.deepcopy(container.get("resources") or {})
    for section in ("requests", "limits"):
        # Zero GPUs in the scheduler's books (a launcher sees the node's), said in both maps:
        # an extended resource requested without a limit is invalid.
        amounts = resources.get(section)
        resources[section] = {**(amounts if isinstance(amounts, dict) else {}), RESOURCE_GPU: 0}
    launcher: Obj = {
        "name": CONTAINER_INFERENCE_SERVER,
        "image": spec.launcher_config.image,
        "args": [
            "launcher",
            "serve",
            "--host",
            "0.0.0.0",  # noqa: S104 (the controller calls the launcher at its Pod IP)
            "--port",
            str(LAUNCHER_PORT),
            "--engine",
            spec.launcher_config.engine,
        ],
        "ports": [{"name": "launcher", "containerPort": LAUNCHER_PORT, "protocol": "TCP"}],
    }
    if server.env_from_pod:
        launcher["env"] = server.env_from_pod
    if container.get("volumeMounts"):
        launcher["volumeMounts"] = copy.deepcopy(container["volumeMounts"])
    launcher["resources"] = resources
    pod_spec: Obj = {"containers": [launcher]}
    if pod.get("serviceAccountName"):
        pod_spec["serviceAccountName"] = pod["serviceAccountName"]
    mounted = {m.get("name") for m in container.get("volumeMounts") or []}
    volumes = [copy.deepcopy(v) for v in pod.get("volumes") or [] if v.get("name") in mounted]
    if volumes:
        pod_spec["volumes"] = volumes
    for key in _COPIED_POD_FIELDS:
        if pod.get(key):
            pod_spec[key] = copy.deepcopy(pod[key])
    return {
        "apiVersion": API_VERSION,
        "kind": "LauncherConfig",
        "metadata": metadata(names.launcher_config, namespace),
        "spec": {
            "maxInstances": spec.launcher_config.max_instances,
            "podTemplate": {"spec": pod_spec},
        },
    }


def _population_policy(
    names: ChildNames,
    namespace: str,
    lc_name: str,
    count: int,
    gpus: int,
    accelerators: AcceleratorTypes | None,
) -> Obj:
    selector: Obj = {"matchLabels": {LABEL_GPU_PRESENT: "true"}}
    if accelerators is not None:
        selector["matchExpressions"] = [
            {
                "key": accelerators.label_key,
                "operator": "In",
                "values": list(accelerators.label_values),
            }
        ]
    return {
        "apiVersion": API_VERSION,
        "kind": "LauncherPopulationPolicy",
        "metadata": metadata(names.launcher_population_policy, namespace),
        "spec": {
            "enhancedNodeSelector": {
                "labelSelector": selector,
                "allocatableResources": {RESOURCE_GPU: {"min": gpus}},
            },
            "countForLauncher": [{"launcherConfigName": lc_name, "launcherCount": count}],
        },
    }


def _requester_deployment(
    names: ChildNames,
    namespace: str,
    model_name: str,
    spec: FMASpec,
    decode: Obj,
    isc_name: str,
    gpus: int,
) -> Obj:
    labels = requester_labels(model_name)
    decode_spec = decode.get("spec") or {}
    pod = (decode_spec.get("template") or {}).get("spec") or {}
    resources = merge(
        copy.deepcopy(_REQUESTER_RESOURCES),
        spec.requester.resources.model_dump(by_alias=True, exclude_none=True)
        if spec.requester.resources
        else {},
        workload_lists,
    )
    for section in ("requests", "limits"):
        resources.setdefault(section, {})[RESOURCE_GPU] = gpus
    probe = {
        "httpGet": {"path": "/ready", "port": REQUESTER_PROBES_PORT},
        "initialDelaySeconds": 2,
        "periodSeconds": 5,
    }
    container: Obj = {
        "name": CONTAINER_INFERENCE_SERVER,
        "image": spec.requester.image,
        "args": ["requester", "serve"],
        "env": [
            {"name": ENV_PROBES_PORT, "value": str(REQUESTER_PROBES_PORT)},
            {"name": ENV_SPI_PORT, "value": str(REQUESTER_SPI_PORT)},
        ],
        "ports": [
            {"name": "probes", "containerPort": REQUESTER_PROBES_PORT, "protocol": "TCP"},
            {"name": "spi", "containerPort": REQUESTER_SPI_PORT, "protocol": "TCP"},
        ],
        "readinessProbe": probe,
        "livenessProbe": {
            "httpGet": {"path": "/health", "port": REQUESTER_PROBES_PORT},
            "periodSeconds": 10,
        },
        "resources": resources,
    }
    pod_spec: Obj = {"containers": [container]}
    for key in ("serviceAccountName", "affinity", "nodeSelector", *_COPIED_POD_FIELDS):
        if pod.get(key):
            pod_spec[key] = copy.deepcopy(pod[key])
    deployment_spec: Obj = {}
    if "replicas" in decode_spec:
        deployment_spec["replicas"] = decode_spec["replicas"]
    deployment_spec["selector"] = {"matchLabels": dict(labels)}
    deployment_spec["template"] = {
        "metadata": {
            "labels": dict(labels),
            "annotations": {
                ANN_INFERENCE_SERVER_CONFIG: isc_name,
                ANN_ADMIN_PORT: str(REQUESTER_SPI_PORT),
            },
        },
        "spec": pod_spec,
    }
    meta = metadata(names.requester_deployment, namespace, labels)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": deployment_spec,
    }


def _checked(
    model: type[InferenceServerConfig | LauncherConfig | LauncherPopulationPolicy], obj: Obj
) -> Obj:
    """``obj`` as rendered, once it passes FMA's own CRD model (a failure is a bad input)."""
    try:
        model.model_validate(obj)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise _fail(f"renders an invalid {obj['kind']}: {where}: {first['msg']}") from None
    return obj


def fma_objects(
    *,
    names: ChildNames,
    namespace: str,
    model_name: str,
    spec: FMASpec,
    decode: Obj,
    pool: Obj | None,
    accelerators: AcceleratorTypes | None,
) -> FMAObjects:
    """The FMA objects standing in for the merged decode Deployment ``decode``."""
    warnings: list[str] = []
    template = (decode.get("spec") or {}).get("template") or {}
    pod = template.get("spec") or {}
    containers = pod.get("containers") or []
    index = model_container_index(containers, spec.container)
    if index is None:
        what = (
            f"no decode container named {spec.container!r}"
            if spec.container
            else "no decode container"
        )
        raise _fail(what, f"{_FIELD}.container" if spec.container else _FIELD)
    server = read_vllm_server(containers[index], warnings)
    others = [c.get("name") for i, c in enumerate(containers) if i != index]
    others += [c.get("name") for c in pod.get("initContainers") or []]
    if others:
        warnings.append(
            f"{_FIELD}: decode containers {others} do not run in FMA mode (launchers run only vLLM)"
        )
    target = ((pool or {}).get("spec") or {}).get("targetPortNumber")
    port = target if isinstance(target, int) else server.port or VLLM_DEFAULT_PORT
    if port == LAUNCHER_PORT:
        raise _fail(f"vLLM port {port} is the launcher's own port; choose another")
    labels = (template.get("metadata") or {}).get("labels") or {}
    gpus = gpu_count(server.container) or 1
    lc_name = spec.launcher_config.name or names.launcher_config
    objects: list[Obj] = []
    if spec.launcher_config.name is None:
        objects.append(
            _checked(LauncherConfig, _launcher_config(names, namespace, spec, server, pod))
        )
    objects.append(
        _checked(InferenceServerConfig, _isc(names, namespace, server, port, labels, lc_name))
    )
    if spec.launcher_population is not None:
        policy = _population_policy(
            names,
            namespace,
            lc_name,
            spec.launcher_population.launchers_per_node,
            gpus,
            accelerators,
        )
        objects.append(_checked(LauncherPopulationPolicy, policy))
    objects.append(
        _requester_deployment(
            names, namespace, model_name, spec, decode, names.inference_server_config, gpus
        )
    )
    return FMAObjects(objects, warnings)
