"""``fma sim compare``: one scenario under several policies, on the same seeds, side by side.

Every variant (an actuation policy with an eviction policy) runs the same seeds, so each sees
the same arrivals and hold times (the demand draws from its own generators): differences
between columns come from the policies alone. ``cold`` never sleeps, so it has no eviction
variants. The result JSON holds, per variant, each seed's metrics, their mean over seeds, and
latency percentiles pooled over every actuation of every seed.
"""

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fma.api.scenario import Scenario
from fma.bench.digest import Digest, Task
from fma.bench.metrics import metric
from fma.bench.summary import latency_stats
from fma.core.placement import PLACEMENTS as PLACEMENTS

ACTUATIONS = ("fma", "direct-sleep", "cold")
EVICTIONS = ("lru", "oldest", "cost")
RUN_METRICS = (
    "hot_hit_rate",
    "warm_hit_rate",
    "cold_launcher_rate",
    "cold_rate",
    "actuations",
    "p50_actuation_s",
    "p95_actuation_s",
    "p99_actuation_s",
    "p95_wait_s",
    "unserved",
    "gpu_utilization",
    "gpu_hours_held",
    "gpu_hours_serving",
    "gpu_hours_loading",
    "gpu_hours_sleeping",
    "invariant_violations",
    "slo_met",
)


@dataclass(frozen=True)
class Variant:
    """One column of a comparison."""

    actuation: str
    eviction: str
    label: str
    placement: str | None = None
    """The placement policy compared (None: the scenario's own)."""

    def apply(self, scenario: Scenario) -> Scenario:
        update = {"actuation": self.actuation, "eviction": self.eviction}
        if self.placement is not None:
            update["placement"] = self.placement
        policy = scenario.policy.model_copy(update=update)
        return scenario.model_copy(update={"policy": policy})


def variants(
    policies: Sequence[str],
    evictions: Sequence[str],
    default: str,
    placements: Sequence[str] = (),
) -> list[Variant]:
    """Every policy with every eviction (``default`` when none given) and every placement
    given; ``cold`` only once (it leaves no sleepers for placement to find).

    Labels name the eviction and the placement only when more than one is compared.
    """
    chosen = list(dict.fromkeys(evictions)) or [default]
    places: list[str | None] = list(dict.fromkeys(placements)) or [None]
    out: list[Variant] = []
    for policy in dict.fromkeys(policies):
        evicts = chosen[:1] if policy == "cold" else chosen
        for e in evicts:
            for place in places[:1] if policy == "cold" else places:
                label = policy if len(evicts) == 1 else f"{policy} / {e}"
                if len(places) > 1 and policy != "cold":
                    label = f"{label} / {place}"
                out.append(Variant(policy, e, label, place))
    return out


def tasks(scenario: Scenario, columns: Sequence[Variant], seeds: Sequence[int]) -> list[Task]:
    return [Task(v.apply(scenario), seed, v.label) for v in columns for seed in seeds]


def _mean(values: Sequence[float]) -> float:
    return round(statistics.fmean(values), 4) if values else 0.0


def variant_result(variant: Variant, digests: Sequence[Digest]) -> dict[str, Any]:
    runs = [
        {"seed": d.seed, **{name: metric(d.summary, name) for name in RUN_METRICS}} for d in digests
    ]
    pooled_all = [x for d in digests for values in d.latencies.values() for x in values]
    total = len(pooled_all)
    pooled: dict[str, Any] = {"actuation_latency_s": latency_stats(pooled_all)}
    for path in ("hot", "warm", "cold_launcher", "cold"):
        n = sum(len(d.latencies[path]) for d in digests)
        pooled[f"{path}_rate"] = round(n / total, 4) if total else 0.0
    return {
        "label": variant.label,
        "policy": variant.actuation,
        "eviction": variant.eviction,
        **({"placement": variant.placement} if variant.placement is not None else {}),
        "mean": {name: _mean([r[name] for r in runs]) for name in RUN_METRICS},
        "pooled": pooled,
        "runs": runs,
    }


def compare_result(
    scenario: Scenario,
    columns: Sequence[Variant],
    seeds: Sequence[int],
    digests: Sequence[Digest],
) -> dict[str, Any]:
    """The comparison JSON. Deterministic for equal digests (no wall-clock figures)."""
    by_label: dict[str, list[Digest]] = {v.label: [] for v in columns}
    for d in digests:
        by_label[d.label].append(d)
    return {
        "scenario": scenario.name,
        "seeds": list(seeds),
        "slo": {k: v for k, v in scenario.slo.model_dump().items() if v is not None},
        "variants": [variant_result(v, by_label[v.label]) for v in columns],
    }


def compare_table(result: dict[str, Any]) -> str:
    """The comparison as a few lines of text, for a terminal."""
    header = f"{'variant':<22}{'hot':>7}{'warm':>7}{'p50 s':>9}{'p95 s':>9}{'GPU-h held':>12}"
    lines = [header]
    for v in result["variants"]:
        pooled = v["pooled"]
        lat = pooled["actuation_latency_s"]
        lines.append(
            f"{v['label']:<22}{pooled['hot_rate']:>7.2f}{pooled['warm_rate']:>7.2f}"
            f"{lat['p50']:>9.1f}{lat['p95']:>9.1f}{v['mean']['gpu_hours_held']:>12.1f}"
        )
    return "\n".join(lines)
