"""The run report: every section a reader needs, plots embedded, nothing fetched."""

import re

from fma.adapters.sim.runner import run_scenario
from fma.api.scenario import Scenario
from fma.bench.report import run_report
from fma.runs import gpus_by_node, summarize_run


def test_run_report_has_every_section_and_embeds_its_plots(small: Scenario) -> None:
    result = run_scenario(small, 3)
    summary = summarize_run(result, 0.5)
    html = run_report(
        summary,
        result.trace.events,
        result.gpu_count,
        description=small.description,
        gpus_by_node=gpus_by_node(small),
    )
    headings = re.findall(r"<h2>(.*?)</h2>", html)
    assert headings == [
        "Summary",
        "SLO",
        "Actuation latency",
        "Hit rates over time",
        "GPU state over time",
        "Unserved requesters over time",
        "Invariants",
    ]
    assert html.count('src="data:image/png;base64,') == 4
    assert "http://" not in html and "https://" not in html
    assert small.description in html
    for path in ("hot", "warm", "cold_launcher", "cold"):
        assert f"<td>{path}</td>" in html


def test_summary_has_gpu_hours_and_waits(small: Scenario) -> None:
    summary = summarize_run(run_scenario(small, 3), 0.0)
    assert set(summary["gpu_hours"]) == {"held", "serving", "loading", "sleeping"}
    assert summary["gpu_hours"]["held"] > 0
    assert summary["wait_s"]["count"] >= summary["actuations"]["total"]
    assert summary["wait_s"]["p95"] >= summary["actuation_latency_s"]["all"]["p50"]
