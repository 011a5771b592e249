"""The three FMA custom resources as pydantic models.

These models are the single source of truth: the CRD manifests in ``crds/`` are generated
from them (:mod:`fma.api.crdgen`), and the operator parses custom resources with them, so a
field, default or validation rule is written down exactly once.

Field names follow the Kubernetes wire form (camelCase, except upstream's ``env_vars``);
Python code reads them by their snake_case attribute names.
"""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

INT32_MAX = 2**31 - 1

Int32 = Annotated[int, Field(ge=-(2**31), le=INT32_MAX, json_schema_extra={"format": "int32"})]
Int64 = Annotated[int, Field(json_schema_extra={"format": "int64"})]
NonEmptyStr = Annotated[str, StringConstraints(min_length=1)]
Quantity = Annotated[
    int | str,
    Field(json_schema_extra={"x-kubernetes-int-or-string": True}),
]
"""A Kubernetes resource quantity such as ``8`` or ``"80Gi"``."""


class _Wire(BaseModel):
    """Base of every wire type: unknown fields are errors, names may be given either way."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class ObjectMeta(BaseModel):
    """The parts of Kubernetes ObjectMeta FMA reads; everything else is kept, not checked."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)

    name: NonEmptyStr
    namespace: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    generation: int | None = None
    uid: str | None = None


class CommonStatus(_Wire):
    """Status shared by the three kinds: what the controllers saw and what is wrong."""

    observed_generation: Int64 | None = Field(None, alias="observedGeneration")
    errors: list[str] = Field(default_factory=list)


# --- InferenceServerConfig ---------------------------------------------------------------------


class ModelServerConfig(_Wire):
    """How to run one vLLM server: its port, options and environment."""

    port: Annotated[int, Field(ge=1, le=65535, json_schema_extra={"format": "int32"})] = Field(
        description="The vLLM listen port, also used for the sleep and wake endpoints."
    )
    options: str | None = Field(
        None,
        description="vLLM command-line options without --port; split with shell-like quoting.",
    )
    env_vars: dict[str, str] | None = Field(None, description="Environment of the vLLM process.")
    labels: dict[str, str] | None = Field(
        None, description="Routing labels put on the bound launcher while its instance serves."
    )
    annotations: dict[str, str] | None = Field(
        None, description="Routing annotations put on the bound launcher while it serves."
    )
    weights_size: Quantity | None = Field(
        None,
        alias="weightsSize",
        description="Total size of the model's weights (e.g. 16Gi): what a sleeping instance "
        "keeps in host memory, split over its GPUs. Unset: the sleeping budget assumes the "
        "most an engine may claim (gpu-memory-utilization of each of its GPUs).",
    )

    @model_validator(mode="after")
    def _weights_size_is_a_size(self) -> "ModelServerConfig":
        if self.weights_size is not None:
            from fma.api.quantity import quantity_bytes

            try:
                quantity_bytes(self.weights_size)
            except ValueError as error:
                raise ValueError(f"weightsSize: {error}") from None
        return self


class InferenceServerConfigSpec(_Wire):
    model_server_config: ModelServerConfig = Field(alias="modelServerConfig")
    launcher_config_name: NonEmptyStr = Field(alias="launcherConfigName")


class InferenceServerConfig(_Wire):
    """An inference server to actuate through a launcher (short name isc)."""

    api_version: Literal["fma.llm-d.ai/v1alpha1"] = Field(
        "fma.llm-d.ai/v1alpha1", alias="apiVersion"
    )
    kind: Literal["InferenceServerConfig"] = "InferenceServerConfig"
    metadata: ObjectMeta
    spec: InferenceServerConfigSpec
    status: CommonStatus | None = None


# --- LauncherConfig ------------------------------------------------------------------------


class TemplateMetadata(_Wire):
    """Only labels and annotations may be set on a launcher Pod template."""

    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class PodTemplate(_Wire):
    metadata: TemplateMetadata | None = None
    spec: dict[str, Any] | None = Field(
        None,
        description="A full core/v1 PodSpec; it must have a container named inference-server.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )


class LauncherConfigSpec(_Wire):
    max_instances: Annotated[
        int, Field(ge=1, le=INT32_MAX, json_schema_extra={"format": "int32"})
    ] = Field(
        alias="maxInstances",
        description="Cap on vLLM instances in one launcher Pod, awake and sleeping together.",
    )
    pod_template: PodTemplate | None = Field(None, alias="podTemplate")


class LauncherConfig(_Wire):
    """How to run a launcher Pod (short name lcfg)."""

    api_version: Literal["fma.llm-d.ai/v1alpha1"] = Field(
        "fma.llm-d.ai/v1alpha1", alias="apiVersion"
    )
    kind: Literal["LauncherConfig"] = "LauncherConfig"
    metadata: ObjectMeta
    spec: LauncherConfigSpec
    status: CommonStatus | None = None


# --- LauncherPopulationPolicy --------------------------------------------------------------


class LabelSelectorRequirement(_Wire):
    key: NonEmptyStr
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[str] | None = None

    @model_validator(mode="after")
    def _values_match_operator(self) -> "LabelSelectorRequirement":
        if self.operator in ("In", "NotIn") and not self.values:
            raise ValueError(f"operator {self.operator} needs a non-empty values list")
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            raise ValueError(f"operator {self.operator} takes no values")
        return self


class LabelSelector(_Wire):
    """A metav1.LabelSelector: all of matchLabels and all of matchExpressions must hold."""

    match_labels: dict[str, str] | None = Field(None, alias="matchLabels")
    match_expressions: list[LabelSelectorRequirement] | None = Field(None, alias="matchExpressions")


class ResourceRange(_Wire):
    """Inclusive bounds on a node's allocatable amount of one resource; null is unbounded."""

    min: Quantity | None = None
    max: Quantity | None = None


class EnhancedNodeSelector(_Wire):
    label_selector: LabelSelector = Field(alias="labelSelector")
    allocatable_resources: dict[str, ResourceRange] | None = Field(
        None,
        alias="allocatableResources",
        description="A node lacking a listed resource does not match.",
    )


class CountForLauncher(_Wire):
    launcher_config_name: NonEmptyStr = Field(alias="launcherConfigName")
    launcher_count: Int32 = Field(alias="launcherCount")


class LauncherPopulationPolicySpec(_Wire):
    enhanced_node_selector: EnhancedNodeSelector = Field(alias="enhancedNodeSelector")
    count_for_launcher: list[CountForLauncher] = Field(
        alias="countForLauncher",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["launcherConfigName"],
        },
    )

    @model_validator(mode="after")
    def _unique_launcher_config_names(self) -> "LauncherPopulationPolicySpec":
        names = [c.launcher_config_name for c in self.count_for_launcher]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate launcherConfigName in countForLauncher: {duplicates}")
        return self


class LauncherPopulationPolicy(_Wire):
    """How many launchers of which LauncherConfig each matching node keeps (short name lpp)."""

    api_version: Literal["fma.llm-d.ai/v1alpha1"] = Field(
        "fma.llm-d.ai/v1alpha1", alias="apiVersion"
    )
    kind: Literal["LauncherPopulationPolicy"] = "LauncherPopulationPolicy"
    metadata: ObjectMeta
    spec: LauncherPopulationPolicySpec
    status: CommonStatus | None = None


CustomResource = InferenceServerConfig | LauncherConfig | LauncherPopulationPolicy
