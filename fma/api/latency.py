"""Platform latencies: one model shared by the simulator, scenarios and the stub engine.

Every default says where it comes from; ``docs/simulator.md`` lists the knobs with their
sources. The stub engine's start, sleep and wake delays default to the same numbers, so a
process test and a simulation agree on what "fast" means.
"""

from pydantic import BaseModel, ConfigDict, Field

GIB = 1024**3
GB = 1000**3


class Latency(BaseModel):
    """Latencies of the platform around the decisions, in seconds (or GB/s where named)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pod_start_s: float = Field(
        5.0, ge=0, description="kubelet: scheduled Pod to running container (image cached)."
    )
    vllm_import_s: float = Field(
        10.0, ge=0, description="Python import of vLLM, paid once per launcher (8-10 s measured)."
    )
    launcher_start_s: float = Field(
        15.0, ge=0, description="Launcher Pod created to Ready, including pod start and import."
    )
    requester_start_s: float = Field(
        0.5,
        ge=0,
        description="A requester's container started to its SPI answering (the program's start).",
    )
    controller_reaction_s: float = Field(
        0.05, ge=0, description="Event seen by the controller to its first write."
    )
    watch_delay_s: float = Field(
        0.02, ge=0, description="Informer/watch delivery delay of one object change."
    )
    api_write_s: float = Field(0.01, ge=0, description="One Kubernetes API write round trip.")
    scheduler_s: float = Field(0.05, ge=0, description="kube-scheduler placement of one Pod.")
    sleep_overhead_s: float = Field(
        0.3, ge=0, description="Fixed part of a level-1 sleep (allocator, bookkeeping)."
    )
    wake_overhead_s: float = Field(
        0.1,
        ge=0,
        description="Fixed part of a wake (CUDA context survives; 0.1-0.8 s small models).",
    )
    engine_stop_s: float = Field(
        2.0,
        ge=0,
        description="An engine's stop on delete: SIGTERM to exit, after which its GPU memory is "
        "free (a few seconds for vLLM; the launcher's grace is 10 s).",
    )
    readiness_probe_period_s: float = Field(
        5.0,
        gt=0,
        description="The requester's readiness probe period: its Pod turns Ready at the first "
        "probe after the controller relayed readiness.",
    )
    readiness_probe_delay_s: float = Field(
        2.0, ge=0, description="The requester's readiness probe's initial delay."
    )
    launcher_probe_period_s: float = Field(
        5.0, gt=0, description="A launcher Pod's readiness probe period (the operator's)."
    )
    launcher_probe_delay_s: float = Field(
        2.0, ge=0, description="A launcher Pod's readiness probe's initial delay."
    )
    engine_probe_min_s: float = Field(
        0.25,
        gt=0,
        description="The controller asks a starting engine whether it serves: first at once, "
        "then after this, doubling ...",
    )
    engine_probe_max_s: float = Field(2.0, gt=0, description="... up to this interval.")
    http_call_s: float = Field(
        0.01,
        ge=0,
        description="One HTTP call the controller waits for (an instance create or delete, a "
        "readiness relay): its worker is busy this long.",
    )
    sleeper_stop_s: float = Field(
        1.0,
        ge=0,
        description="A sleeping engine's exit on delete (the launcher answers once it is gone).",
    )
    pod_stop_s: float = Field(
        1.0,
        ge=0,
        description="kubelet: a deleted requester Pod's container stops and the Pod goes; its "
        "GPUs are free only then.",
    )
    controller_workers: int = Field(
        2, ge=1, le=64, description="Controller workers taking node items (upstream --num-workers)."
    )
    backoff_base_s: float = Field(
        0.005, gt=0, description="First retry delay of a failed node item (client-go: 5 ms)."
    )
    backoff_max_s: float = Field(
        20.0, gt=0, description="Cap of the doubling retry delay (upstream caps at 20 s)."
    )
    relist_s: float = Field(
        1.0, ge=0, description="Informer re-list after a broken watch or a controller start."
    )
    controller_restart_s: float = Field(
        10.0, ge=0, description="Controller down time on a restart: Pod restart and cache sync."
    )
    http_timeout_s: float = Field(
        30.0, gt=0, description="Controller HTTP client timeout (a hung wake costs this)."
    )


DEFAULT_LATENCY = Latency()

ENGINE_INIT_S_DEFAULT = 14.0
"""A model's engine init beyond loading and torch.compile (profiling, KV cache, CUDA graphs):
"init engine (profile, create kv cache, warmup model) took 14.18 seconds" for Llama-3-8B
without compilation (vllm-project/vllm#11005)."""
COMPILE_S_DEFAULT = 19.4
"""torch.compile the first time on a node: "torch.compile takes 19.37 s in total" for
Llama-3-8B (vllm-project/vllm#11005)."""
COMPILE_CACHED_S_DEFAULT = 6.0
"""torch.compile from vLLM's compile cache: "torch.compile takes 5.96 s in total", the graph
looked up from the cache (vllm-project/vllm#13144)."""
LAUNCHER_MEMORY_GIB_DEFAULT = 1.0
"""Host memory of a launcher's process with vLLM imported: the peak resident set of importing
vLLM 0.32.0 and its OpenAI server with torch 2.13 (cu130) measured 0.94-0.97 GiB on this
project's build machine (docs/simulator.md)."""
PIN_GBPS_DEFAULT = 7.2
"""Page-locking host memory, GB/s: 61.68 GiB in 9.2 s on an H100 VM (llm-d's GKE pod-snapshot
guide); a first sleep pays it for its buffers."""

STUB_START_S_DEFAULT = 2.0
"""Stub engine start-up delay: a small model's engine init (a real one is 14-40 s)."""
STUB_SLEEP_S_DEFAULT = DEFAULT_LATENCY.sleep_overhead_s
STUB_WAKE_S_DEFAULT = DEFAULT_LATENCY.wake_overhead_s
