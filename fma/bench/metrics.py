"""Named numbers of a run, and targets over them: what ``compare`` tabulates and ``plan`` meets.

A metric is read from a run's summary JSON by name (``p95_actuation_s``, ``hot_hit_rate``, ...,
see :data:`METRICS`) or by a dotted path into the summary (``actuation_latency_s.hot.p95``).
A target is ``NAME OP NUMBER`` with OP one of ``<=``, ``<``, ``>=``, ``>``, ``==``.
"""

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Summary = Mapping[str, Any]


def _rate(path: str) -> Callable[[Summary], float]:
    def get(s: Summary) -> float:
        total = s["actuations"]["total"]
        return round(s["actuations"][path] / total, 4) if total else 0.0

    return get


def _latency(stat: str, key: str = "actuation_latency_s") -> Callable[[Summary], float]:
    return lambda s: float(s[key]["all"][stat] if key == "actuation_latency_s" else s[key][stat])


def _hours(kind: str) -> Callable[[Summary], float]:
    return lambda s: float(s.get("gpu_hours", {}).get(kind, math.nan))


METRICS: dict[str, tuple[str, Callable[[Summary], float]]] = {
    "hot_hit_rate": ("share of actuations that woke a sleeper", lambda s: s["hot_hit_rate"]),
    "warm_hit_rate": ("share served by an existing launcher", lambda s: s["warm_hit_rate"]),
    "cold_launcher_rate": ("share that needed a new launcher", lambda s: s["cold_launcher_rate"]),
    "cold_rate": ("share started from scratch", _rate("cold")),
    "actuations": ("number of actuations", lambda s: s["actuations"]["total"]),
    "p50_actuation_s": ("median actuation latency (s)", _latency("p50")),
    "p95_actuation_s": ("95th percentile actuation latency (s)", _latency("p95")),
    "p99_actuation_s": ("99th percentile actuation latency (s)", _latency("p99")),
    "max_actuation_s": ("longest actuation (s)", _latency("max")),
    "p50_wait_s": ("median wait, created to ready (s)", _latency("p50", "wait_s")),
    "p95_wait_s": ("95th percentile wait, created to ready (s)", _latency("p95", "wait_s")),
    "p99_wait_s": ("99th percentile wait, created to ready (s)", _latency("p99", "wait_s")),
    "max_wait_s": ("longest wait, created to ready (s)", _latency("max", "wait_s")),
    "unserved": ("requesters wanted and not ready at the end", lambda s: s["unserved"]),
    "gpu_utilization": ("time-averaged share of GPUs held", lambda s: s["gpu_utilization"]),
    "gpu_hours_held": ("GPU-hours held by requesters", _hours("held")),
    "gpu_hours_serving": ("GPU-hours with an awake instance", _hours("serving")),
    "gpu_hours_loading": ("GPU-hours starting or waking instances", _hours("loading")),
    "gpu_hours_sleeping": ("GPU-hours holding only sleepers", _hours("sleeping")),
    "invariant_violations": ("invariant breaches", lambda s: len(s["invariant_violations"])),
    "slo_met": ("1 when every SLO target of the scenario is met", lambda s: float(s["slo"]["met"])),
}
LOWER_IS_BETTER = {
    name
    for name in METRICS
    if name.endswith("_s")
    or name.startswith("gpu_hours")
    or name in ("unserved", "invariant_violations", "cold_rate", "cold_launcher_rate")
}


class MetricError(ValueError):
    """An unknown metric name or a malformed target; the message is one line."""


def metric(summary: Summary, name: str) -> float:
    """The value of metric ``name`` (a known name or a dotted path) in ``summary``."""
    if name in METRICS:
        return float(METRICS[name][1](summary))
    node: Any = summary
    for part in name.split("."):
        if not isinstance(node, Mapping) or part not in node:
            known = ", ".join(METRICS)
            raise MetricError(f"unknown metric {name!r} (known: {known}; or a summary path)")
        node = node[part]
    if isinstance(node, bool) or not isinstance(node, int | float):
        raise MetricError(f"{name!r} is not a number in the summary")
    return float(node)


_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
}
_TARGET = re.compile(
    r"^\s*([A-Za-z_][\w.]*)\s*(<=|>=|==|<|>)\s*([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*$"
)


@dataclass(frozen=True)
class Target:
    """``metric op threshold``, e.g. ``p95_actuation_s <= 10``."""

    metric: str
    op: str
    threshold: float

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.threshold:g}"

    def value(self, summary: Summary) -> float:
        return metric(summary, self.metric)

    def met(self, summary: Summary) -> bool:
        return _OPS[self.op](self.value(summary), self.threshold)

    def worst(self, values: Sequence[float]) -> float:
        """The value among ``values`` furthest on the failing side of the target."""
        return max(values) if self.op in ("<=", "<") else min(values)


def parse_target(text: str, check: Summary | None = None) -> Target:
    """Parse ``NAME OP NUMBER``; with ``check`` (a summary), also check the name resolves."""
    match = _TARGET.match(text)
    if match is None:
        raise MetricError(
            f"target {text!r}: expected NAME OP NUMBER, e.g. 'p95_actuation_s<=10' "
            "(OP is <=, <, >=, > or ==)"
        )
    target = Target(match.group(1), match.group(2), float(match.group(3)))
    if check is not None:
        target.value(check)
    elif target.metric not in METRICS and "." not in target.metric:
        metric({}, target.metric)  # raises with the list of known names
    return target
