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
        0.2,
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
        1.0, gt=0, description="Requester readiness-probe period after a relayed ready."
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

STUB_START_S_DEFAULT = 2.0
"""Stub engine start-up delay: a small model's engine init (a real one is 14-40 s)."""
STUB_SLEEP_S_DEFAULT = DEFAULT_LATENCY.sleep_overhead_s
STUB_WAKE_S_DEFAULT = DEFAULT_LATENCY.wake_overhead_s
