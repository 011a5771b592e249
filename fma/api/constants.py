"""Every wire name FMA shares with Kubernetes and its peers, in one place.

Annotation, label and finalizer keys, ports, environment-variable names and the API group of
the CRDs. The names are upstream's so that clusters, dashboards and admission
policies written for upstream keep working.
"""

from typing import Final

# --- API group of the three CRDs -------------------------------------------------------------
GROUP: Final = "fma.llm-d.ai"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"

_DP: Final = "dual-pods.llm-d.ai/"
"""Prefix of every annotation, label and finalizer the dual-pods controller owns."""

# --- On requester Pods -------------------------------------------------------
ANN_SERVER_PATCH: Final = _DP + "server-patch"
ANN_INFERENCE_SERVER_CONFIG: Final = _DP + "inference-server-config"
ANN_ADMIN_PORT: Final = _DP + "admin-port"
ANN_PROXY_PORT: Final = _DP + "proxy-port"
"""The port of the requester's TCP proxy (its ``--proxy-port``); its presence asks the
controller to point that proxy at the bound provider."""
ANN_STATUS: Final = _DP + "status"
ANN_ACCELERATORS: Final = _DP + "accelerators"
LABEL_DUAL: Final = _DP + "dual"
LABEL_INSTANCE: Final = _DP + "instance"
FINALIZER_REQUESTER: Final = _DP + "requester"

# --- On provider Pods, direct and launcher -----------------------------------
ANN_REQUESTER: Final = _DP + "requester"
"""`"<requesterUID> <requesterName>"`: the one authoritative binding record."""
LABEL_SLEEPING: Final = _DP + "sleeping"
ANN_NOMINAL: Final = _DP + "nominal"
FINALIZER_PROVIDER: Final = _DP + "provider"
LABEL_COMPONENT: Final = "app.kubernetes.io/component"
COMPONENT_LAUNCHER: Final = "launcher"
LABEL_LAUNCHER_CONFIG_NAME: Final = _DP + "launcher-config-name"
LABEL_NODE_NAME: Final = _DP + "node-name"
ANN_LAUNCHER_TEMPLATE_HASH: Final = _DP + "launcher-populator-template-hash"
ANN_LAUNCHER_CONFIG_HASH: Final = _DP + "launcher-config-hash"
ANN_INSTANCE_ID: Final = _DP + "instance-id"
ANN_SERVER_PORT: Final = _DP + "server-port"
ANN_VLLM_CONFIG: Final = _DP + "vllm-config"
ANN_ISC_ROUTING_METADATA: Final = _DP + "isc-routing-metadata"
ANN_VLLM_INSTANCE_SIGNATURE: Final = _DP + "vllm-instance-signature"
LABEL_LAUNCHER_STUCK: Final = _DP + "launcher-stuck"
SLEEPER_LABEL_PREFIX: Final = "sleeping." + _DP
"""On a launcher Pod: ``sleeping.dual-pods.llm-d.ai/<InferenceServerConfig>: "true"`` for each
InferenceServerConfig it holds a sleeping instance of (kept with ``--sleeper-labels``), so that
a requester's preferred pod affinity can point at it (docs/placement.md)."""
PLACEMENT_WEBHOOK_PATH: Final = "/v1/placement/mutate"
"""The operator's mutating admission webhook that adds sleeper affinity to new requesters."""

# --- The controller's memory, kept in the cluster ------------------------------------------------
# Whatever the decisions need to remember lives on the Pods it concerns, so that a restarted
# controller reads it back and decides exactly as before.
ANN_ACTUATION_PATH: Final = _DP + "actuation-path"
"""On a bound provider: the path decided when it was bound (hot, warm, cold_launcher, cold)."""
ANN_BOUND_AT: Final = _DP + "bound-at"
"""On a bound provider: when it was bound (RFC 3339 with fractional seconds)."""
ANN_INSTANCES_LAST_USED: Final = _DP + "instances-last-used"
"""On a provider: JSON ``{instance ID: RFC 3339 time}``, when each instance was last woken or
put to sleep (the LRU order; upstream forgets it on every restart)."""
ANN_SLEEP_REFUSED: Final = _DP + "sleep-refused"
"""On a provider: JSON list of the instance IDs whose engine refused to sleep."""
ANN_ACTUATED: Final = _DP + "actuated"
"""On a requester: ``"<path> <RFC 3339 time>"`` once its first ready relay (the actuation) was
recorded, so it is recorded once, across restarts."""
ANN_WEIGHTS_SIZE: Final = _DP + "weights-size"
"""On a requester of the direct path: the size of its model's weights (a quantity), as an
InferenceServerConfig's ``weightsSize`` says it on the launcher path."""

RESERVED_KEY_PREFIXES: Final = (_DP, "kubernetes.io/", "k8s.io/")

# --- What the admission policies protect ---------------------------------------------------------
PROTECTED_ANNOTATIONS: Final = (
    ANN_REQUESTER,
    ANN_STATUS,
    ANN_INSTANCE_ID,
    ANN_SERVER_PORT,
    ANN_VLLM_CONFIG,
    ANN_ISC_ROUTING_METADATA,
    ANN_ACTUATION_PATH,
    ANN_BOUND_AT,
    ANN_INSTANCES_LAST_USED,
    ANN_SLEEP_REFUSED,
    ANN_ACTUATED,
)
"""Annotations only FMA's controllers may change on any Pod: upstream's binding and bookkeeping
records, and the controller memory a restarted operator decides from."""
PROTECTED_LABELS: Final = (LABEL_DUAL, LABEL_LAUNCHER_CONFIG_NAME)
CONTROLLER_USER_PATTERN: Final = r"^system:serviceaccount:[^:]+:[^:]+-fma-controllers$"
"""Who is exempt: the ServiceAccounts of FMA's controllers, named ``<anything>-fma-controllers``
in any namespace (upstream's rule)."""
"""ISC routing labels and annotations may not use these prefixes."""

# --- Kubernetes names FMA reads ----------------------------------------------------------------
CONTAINER_INFERENCE_SERVER: Final = "inference-server"
"""The one container of a requester, and the vLLM/launcher container of a provider."""
RESOURCE_GPU: Final = "nvidia.com/gpu"
LABEL_GPU_PRESENT: Final = "nvidia.com/gpu.present"
LABEL_GPU_MEMORY: Final = "nvidia.com/gpu.memory"
"""Node label of one GPU's memory in MiB, as NVIDIA's GPU feature discovery writes it."""
LABEL_HOSTNAME: Final = "kubernetes.io/hostname"
CONFIGMAP_GPU_MAP: Final = "gpu-map"
"""ConfigMap whose data maps a node name to the JSON object `{gpu_uuid: index}`."""

# --- Ports ---------------------------------------------------------------------------------------
LAUNCHER_PORT: Final = 8001
REQUESTER_PROBES_PORT: Final = 8080
REQUESTER_SPI_PORT: Final = 8081
REQUESTER_PROXY_PORT: Final = 8082
CONTROLLER_METRICS_PORT: Final = 8002
STUB_ENGINE_PORT: Final = 8000

# --- Requester SPI paths ---------------------------------------------------------------------
SPI_ACCELERATORS_PATH: Final = "/v1/dual-pods/accelerators"
SPI_BECOME_READY_PATH: Final = "/v1/become-ready"
SPI_BECOME_UNREADY_PATH: Final = "/v1/become-unready"
SPI_PROXY_CONFIG_PATH: Final = "/v1/proxy/config"

# --- Environment variables -------------------------------------------------------------------
ENV_PROBES_PORT: Final = "PROBES_PORT"
ENV_SPI_PORT: Final = "SPI_PORT"
ENV_CUDA_VISIBLE_DEVICES: Final = "CUDA_VISIBLE_DEVICES"
ENV_NVIDIA_VISIBLE_DEVICES: Final = "NVIDIA_VISIBLE_DEVICES"
ENV_NVIDIA_DRIVER_CAPABILITIES: Final = "NVIDIA_DRIVER_CAPABILITIES"
ENV_VLLM_SERVER_DEV_MODE: Final = "VLLM_SERVER_DEV_MODE"
ENV_NODE_NAME: Final = "NODE_NAME"
ENV_NAMESPACE: Final = "NAMESPACE"

LAUNCHER_CONTAINER_ENV: Final = {
    ENV_NVIDIA_VISIBLE_DEVICES: "all",
    ENV_NVIDIA_DRIVER_CAPABILITIES: "compute,utility",
    ENV_VLLM_SERVER_DEV_MODE: "1",
}
"""Injected into (or overwriting) the launcher container's environment."""

# --- ModelService (llm-d.ai), as upstream llm-d-model-service names things -------------------
MS_GROUP: Final = "llm-d.ai"
MS_VERSION: Final = "v1alpha1"
MS_API_VERSION: Final = f"{MS_GROUP}/{MS_VERSION}"
LABEL_MS_INFERENCE_SERVING: Final = "llm-d.ai/inferenceServing"
LABEL_MS_MODEL: Final = "llm-d.ai/model"
LABEL_MS_ROLE: Final = "llm-d.ai/role"
LABEL_MS_EPP: Final = "llm-d.ai/epp"
LABEL_MS_COMPONENT: Final = "llm-d.ai/component"
COMPONENT_FMA_REQUESTER: Final = "fma-requester"
"""`llm-d.ai/component` of requester Pods standing in for decode Pods."""
ANN_MS_DECOUPLE_SCALING: Final = "llm-d.ai/decouple-scaling"
"""`"true"` on a Deployment whose replicas an autoscaler owns after creation."""
FMA_IMAGE: Final = "ghcr.io/llm-d-fma/fma"
"""The project's image (entrypoint `fma`): requester, launcher and operator."""

# --- What the operator renders (fma/adapters/k8s/render) ---------------------------------------
KIND_LAUNCHER_CONFIG: Final = "LauncherConfig"
LAUNCHER_PORT_NAME: Final = "launcher"
"""Name of the launcher container's port 8001, declared when its template does not."""
VLLM_CONFIG_ISC_NAME: Final = "isc-name"
VLLM_CONFIG_INFERENCE_PORT: Final = "inference-port"
"""Keys of the annotations of a VllmConfig sent to a launcher (opaque to the launcher): the
InferenceServerConfig it was made from and the port its instance serves on."""
SERVER_PATCH_NODE_NAME: Final = "NodeName"
SERVER_PATCH_LOCAL_VOLUME: Final = "LocalVolume"
"""The fields a server patch template may read (``.NodeName``, ``.LocalVolume``)."""
