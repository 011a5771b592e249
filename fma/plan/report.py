"""The HTML report of ``fma plan``: the answer, the table of runs, one curve per target."""

from collections.abc import Sequence
from typing import Any

from fma.bench import plots
from fma.bench.metrics import METRICS, Target
from fma.bench.report import Section, Table, render


def _answer(result: dict[str, Any]) -> tuple[str, bool]:
    chosen = result["chosen"]
    seeds = len(result["seeds"])
    if chosen is None:
        return (
            f"No value of {result['vary']} in {result['values'][0]}..{result['values'][-1]} "
            f"meets every target in all {seeds} seeds: widen the range or relax a target.",
            False,
        )
    text = f"Smallest {result['vary']} meeting every target in all {seeds} seeds: {chosen:g}."
    if not result["monotone"]:
        text += (
            " The runs were not monotone (a larger value missed a target that a smaller one "
            "met); the choice is the smallest value whose upper neighbour also meets them."
        )
    return text, True


def table(result: dict[str, Any]) -> Table:
    header = ["value", "meets all", "seeds meeting"]
    for target in result["targets"]:
        header += [f"{target}: mean", "worst"]
    rows = []
    for row in result["table"]:
        cells: list[Any] = [
            f"{row['value']:g}",
            "yes" if row["meets_all"] else "no",
            f"{row['seeds_meeting']}/{len(result['seeds'])}",
        ]
        for target in result["targets"]:
            detail = row["targets"][target]
            cells += [detail["mean"], detail["worst"]]
        rows.append(cells)
    return Table(header, rows)


def plan_report(result: dict[str, Any], targets: Sequence[Target], description: str = "") -> str:
    """The plan report for ``result`` (from :func:`fma.plan.planner.plan` with ``targets``)."""
    answer, found = _answer(result)
    xs = [row["value"] for row in result["table"]]
    passed = [row["meets_all"] for row in result["table"]]
    images = []
    for target in targets:
        images.append(
            plots.plan_curve(
                xs,
                [row["targets"][str(target)]["per_seed"] for row in result["table"]],
                passed,
                title=f"{target} against {result['vary']}",
                xlabel=result["vary"],
                ylabel=METRICS[target.metric][0] if target.metric in METRICS else target.metric,
                target=target.threshold,
                chosen=result["chosen"],
            )
        )
    how = (
        "bisection, with both neighbours of the candidate checked"
        if result["search"] == "bisect"
        else "every value in the range"
    )
    sections = [
        Section(
            "Answer",
            text=description,
            status=found,
            status_text=answer,
        ),
        Section(
            "Runs",
            text=(
                f"Evaluated {result['evaluated']} of {len(result['values'])} values ({how}), "
                f"each with seeds {', '.join(str(s) for s in result['seeds'])}. A value meets "
                "a target only if every seed does; 'worst' is the worst seed."
            ),
            table=table(result),
        ),
        Section(
            "Curves",
            text=(
                "Each dot is one seed's run: green where the value meets every target, red "
                "where it misses one. The line is the mean over seeds."
            ),
            images=images,
        ),
    ]
    return render(
        f"FMA capacity plan: {result['scenario']}",
        f"vary {result['vary']}; targets {', '.join(result['targets'])}",
        sections,
    )
