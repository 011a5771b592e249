"""Render a ModelService and its BaseConfig into the objects the ModelService owns.

The pipeline is upstream's: compute the template variables, render the ModelService's args,
render and parse the BaseConfig, merge each base object with the ModelService's overlay, and
own every child. It is one pure function, shared by the ``generate`` dry run and the operator:
what the operator needs from the cluster (the ModelService's uid, the live replica counts of
decoupled Deployments) comes in through :class:`RenderOptions`.

Children, in the order they are applied: ConfigMaps, prefill Deployment and Service, decode
Deployment (or, in FMA mode, LauncherConfig, InferenceServerConfig, LauncherPopulationPolicy and
the requester Deployment) and Service, the P/D ServiceAccount, the EPP Deployment, Service,
ServiceAccount and RoleBinding, the HTTPRoute, the InferencePool and the InferenceModel.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from fma.api.constants import ANN_MS_DECOUPLE_SCALING
from fma.api.modelservice import BaseConfigMap, ModelService, PDSpec
from fma.modelservice.baseconfig import BaseObjects, parse_base_objects
from fma.modelservice.children import (
    config_map_overlay,
    epp_overlay,
    epp_role_binding,
    http_route_overlay,
    inference_model_overlay,
    inference_pool_overlay,
    owned,
    pd_overlay,
    service_account,
    service_overlay,
)
from fma.modelservice.errors import RenderError
from fma.modelservice.fma_mode import fma_objects
from fma.modelservice.interpolate import interpolate_baseconfig, interpolate_modelservice
from fma.modelservice.merge import merge_object, replace_lists, route_lists, workload_lists
from fma.modelservice.names import (
    DECODE,
    PREFILL,
    ChildNames,
    epp_labels,
    model_label,
    pod_labels,
    sanitize,
)
from fma.modelservice.parallelism import apply_tensor_parallelism
from fma.modelservice.uris import ModelSource, model_source
from fma.modelservice.variables import template_functions, template_variables

Obj = dict[str, Any]
DEFAULT_NAMESPACE: Final = "default"


@dataclass(frozen=True)
class RenderOptions:
    """What rendering needs beyond the two inputs.

    ``namespace``: where the children go (``--namespace``); it must agree with the
    ModelService's own, and defaults to it, else to ``default``. ``uid``: the ModelService's
    uid, for owner references (default: ``metadata.uid``; without one, children are unowned).
    ``live_replicas``: Deployment name to its current ``spec.replicas``, for decoupled scaling.
    """

    namespace: str | None = None
    epp_cluster_role: str | None = None
    epp_pull_secrets: tuple[str, ...] = ()
    pd_pull_secrets: tuple[str, ...] = ()
    uid: str | None = None
    live_replicas: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Rendering:
    """The children, in apply order, as plain dicts ready for YAML; and what to warn about."""

    objects: tuple[Obj, ...]
    warnings: tuple[str, ...]
    namespace: str


def resolve_namespace(msvc: ModelService, requested: str | None) -> str:
    """The namespace children go to: as requested, the ModelService's own, or ``default``."""
    own = msvc.metadata.namespace or None
    if requested and own and requested != own:
        raise RenderError(
            "option",
            "--namespace",
            f"{requested!r} differs from the ModelService's namespace {own!r}",
        )
    return requested or own or DEFAULT_NAMESPACE


def _check_names(msvc: ModelService) -> None:
    if not sanitize(msvc.metadata.name):
        raise RenderError(
            "modelservice", "metadata.name", "no valid object name can be made from it"
        )
    if not model_label(msvc.spec.routing.model_name):
        raise RenderError(
            "modelservice",
            "spec.routing.modelName",
            "no valid llm-d.ai/model label can be made from it",
        )


def _base_reference_warnings(msvc: ModelService, base: BaseConfigMap | None) -> list[str]:
    ref = msvc.spec.base_config_map_ref
    if ref is None or not ref.name:
        return []
    if base is None:
        return [f"spec.baseConfigMapRef names {ref.name!r} but no BaseConfig was given; none used"]
    given = base.metadata.name if base.metadata is not None else None
    if given and given != ref.name:
        return [f"spec.baseConfigMapRef names {ref.name!r}; rendering with BaseConfig {given!r}"]
    return []


class _Renderer:
    def __init__(
        self,
        msvc: ModelService,
        base: BaseObjects,
        options: RenderOptions,
        namespace: str,
        model: ModelSource,
    ) -> None:
        self.msvc = msvc
        self.spec = msvc.spec
        self.base = base
        self.options = options
        self.namespace = namespace
        self.model = model
        self.names = ChildNames(msvc.metadata.name)
        self.warnings: list[str] = list(base.warnings)

    def base_object(self, key: str) -> Obj | None:
        obj = self.base.get(key)
        if obj is not None:
            given = (obj.get("metadata") or {}).get("namespace")
            if given and given != self.namespace:
                self.warnings.append(
                    f"data.{key}.metadata.namespace: {given!r} is replaced by {self.namespace!r}"
                )
        return obj

    def config_maps(self) -> list[Obj]:
        out = []
        for i, config_map in enumerate(self.base.config_maps):
            given = (config_map.get("metadata") or {}).get("namespace")
            if given and given != self.namespace:
                raise RenderError(
                    "baseconfig",
                    f"data.configMaps[{i}].metadata.namespace",
                    f"{given!r} is not the ModelService's namespace {self.namespace!r}; "
                    "owner references cannot cross namespaces",
                )
            out.append(merge_object(config_map, config_map_overlay(self.namespace), replace_lists))
        return out

    def scaled(self, deployment: Obj) -> Obj:
        """Decoupled scaling: marked, and an existing Deployment keeps its live replicas."""
        if not self.spec.decouple_scaling:
            return deployment
        metadata = deployment["metadata"]
        metadata["annotations"] = {
            **(metadata.get("annotations") or {}),
            ANN_MS_DECOUPLE_SCALING: "true",
        }
        live = self.options.live_replicas.get(metadata["name"])
        if live is not None:
            deployment["spec"]["replicas"] = live
        return deployment

    def role(self, role: str, spec: PDSpec | None, pool: Obj | None) -> list[Obj]:
        base = self.base_object(f"{role}Deployment")
        if spec is None and base is None:
            return []
        accelerators = spec.accelerator_types if spec is not None else None
        overlay = pd_overlay(self.msvc, role, spec, accelerators, self.namespace, self.model)
        deployment = merge_object(base, overlay, workload_lists)
        if (
            spec is not None
            and spec.parallelism is not None
            and spec.parallelism.tensor is not None
        ):
            field_name = f"spec.{role}.parallelism.tensor"
            deployment = apply_tensor_parallelism(deployment, spec.parallelism.tensor, field_name)
        out: list[Obj] = []
        fma = self.spec.decode.fma if role == DECODE and self.spec.decode is not None else None
        if fma is not None and fma.enabled:
            rendered = fma_objects(
                names=self.names,
                namespace=self.namespace,
                model_name=self.spec.routing.model_name,
                spec=fma,
                decode=deployment,
                pool=pool,
                accelerators=accelerators,
            )
            self.warnings += rendered.warnings
            out += [self.scaled(o) if o["kind"] == "Deployment" else o for o in rendered.objects]
        else:
            out.append(self.scaled(deployment))
        base_service = self.base_object(f"{role}Service")
        if base_service is not None:
            labels = pod_labels(self.spec.routing.model_name, role)
            overlay = service_overlay(self.names.service(role), self.namespace, labels)
            out.append(merge_object(base_service, overlay, replace_lists))
        return out

    def endpoint_picker(self) -> list[Obj]:
        base = self.base_object("eppDeployment")
        if base is None:
            return []
        role = self.options.epp_cluster_role
        if not role:
            raise RenderError(
                "option",
                "--epp-cluster-role",
                "required: the BaseConfig has an eppDeployment, "
                "and its RoleBinding needs a ClusterRole",
            )
        out = [merge_object(base, epp_overlay(self.msvc, self.namespace), workload_lists)]
        base_service = self.base_object("eppService")
        if base_service is not None:
            labels = epp_labels(self.names)
            overlay = service_overlay(self.names.epp_service, self.namespace, labels, labels)
            out.append(merge_object(base_service, overlay, replace_lists))
        out.append(
            service_account(
                self.names.epp_service_account, self.namespace, self.options.epp_pull_secrets
            )
        )
        out.append(epp_role_binding(self.names, self.namespace, role))
        return out

    def http_route(self) -> list[Obj]:
        base = self.base_object("httpRoute")
        if base is None and not self.spec.routing.gateway_refs:
            return []
        return [merge_object(base, http_route_overlay(self.msvc, self.namespace), route_lists)]

    def pool(self) -> Obj | None:
        base = self.base_object("inferencePool")
        if base is None:
            return None
        return merge_object(base, inference_pool_overlay(self.msvc, self.namespace), replace_lists)

    def inference_model(self) -> list[Obj]:
        base = self.base_object("inferenceModel")
        if base is None:
            return []
        return [
            merge_object(base, inference_model_overlay(self.msvc, self.namespace), replace_lists)
        ]

    def children(self) -> list[Obj]:
        pool = self.pool()
        out = self.config_maps()
        workloads = self.role(PREFILL, self.spec.prefill, pool) + self.role(
            DECODE, self.spec.decode, pool
        )
        out += workloads
        if any(o["kind"] == "Deployment" for o in workloads):
            out.append(
                service_account(
                    self.names.pd_service_account, self.namespace, self.options.pd_pull_secrets
                )
            )
        out += self.endpoint_picker()
        out += self.http_route()
        if pool is not None:
            out.append(pool)
        out += self.inference_model()
        uid = self.options.uid or self.msvc.metadata.uid
        return [owned(o, self.msvc.metadata.name, uid) for o in out]


def render(
    msvc: ModelService, base: BaseConfigMap | None = None, options: RenderOptions | None = None
) -> Rendering:
    """The children of ``msvc`` rendered with ``base``; :class:`RenderError` on bad input."""
    options = options or RenderOptions()
    namespace = resolve_namespace(msvc, options.namespace)
    _check_names(msvc)
    model = model_source(msvc.spec.model_artifacts)
    data = template_variables(msvc, namespace, model)
    functions = template_functions(msvc)
    msvc = interpolate_modelservice(msvc, data, functions)
    rendered, warnings = interpolate_baseconfig(base or BaseConfigMap(), data, functions)
    renderer = _Renderer(msvc, parse_base_objects(rendered), options, namespace, model)
    objects = renderer.children()
    all_warnings = _base_reference_warnings(msvc, base) + warnings + renderer.warnings
    return Rendering(tuple(objects), tuple(all_warnings), namespace)
