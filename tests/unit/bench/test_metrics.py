"""Metric names and target expressions, as `fma plan --target` reads them."""

import pytest

from fma.bench.metrics import METRICS, MetricError, metric, parse_target
from fma.bench.summary import summarize

EMPTY = summarize(
    [], scenario="s", seed=1, sim_time_s=3600, wall_s=0, gpu_count=8, unserved=2, slo={}
)


def test_every_named_metric_reads_a_summary() -> None:
    values = {name: metric(EMPTY, name) for name in METRICS}
    assert values["unserved"] == 2
    assert values["hot_hit_rate"] == 0


def test_dotted_paths_reach_into_the_summary() -> None:
    assert metric(EMPTY, "actuation_latency_s.hot.p95") == 0
    assert metric(EMPTY, "gpu_hours.held") == 0


@pytest.mark.parametrize(
    ("text", "met"),
    [
        ("p95_actuation_s<=10", True),
        ("unserved <= 1", False),
        ("unserved<2.5", True),
        ("hot_hit_rate>=0.8", False),
        ("unserved==2", True),
        ("gpu_hours.held > -1e-3", True),
    ],
)
def test_targets(text: str, met: bool) -> None:
    assert parse_target(text, check=EMPTY).met(EMPTY) is met


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("p95 <= 10", "unknown metric 'p95'"),
        ("hot_hit_rate => 0.8", "expected NAME OP NUMBER"),
        ("hot_hit_rate >= high", "expected NAME OP NUMBER"),
        ("actuation_latency_s.hot <= 3", "is not a number"),
    ],
)
def test_bad_targets_say_why(text: str, message: str) -> None:
    with pytest.raises(MetricError, match=message):
        parse_target(text, check=EMPTY)


def test_worst_is_on_the_failing_side() -> None:
    assert parse_target("p95_actuation_s<=10").worst([3, 12, 7]) == 12
    assert parse_target("hot_hit_rate>=0.8").worst([0.9, 0.7, 0.95]) == 0.7
