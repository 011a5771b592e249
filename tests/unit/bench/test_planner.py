"""The planner over launchers per node: fewer cold-with-launcher starts as launchers are added."""

from pathlib import Path

from fma.api.loading import load_scenario
from fma.bench.digest import Digest, Task
from fma.bench.metrics import parse_target
from fma.plan.planner import plan
from fma.plan.vary import parse_vary
from fma.sweep import run_tasks

DEMO = Path(__file__).parents[3] / "sim" / "scenarios" / "demo.yaml"


def test_plan_launchers_per_node() -> None:
    demo = load_scenario(DEMO)
    demo = demo.model_copy(update={"duration": 2 * 3600.0})
    batches: list[int] = []

    def run(tasks: list[Task]) -> list[Digest]:
        batches.append(len(tasks))
        return run_tasks(tasks, workers=1)

    result = plan(
        demo,
        parse_vary("launchers.per_node=0..8"),
        [parse_target("cold_launcher_rate<=0.05")],
        [7, 8],
        run,
    )
    chosen = result["chosen"]
    rows = {row["value"]: row for row in result["table"]}
    assert chosen is not None and 0 < chosen < 8
    assert rows[chosen]["meets_all"] and not rows[chosen - 1]["meets_all"]
    assert rows[chosen + 1]["meets_all"]
    none = rows[0]["targets"]["cold_launcher_rate<=0.05"]
    assert none["worst"] == max(none["per_seed"]) > 0.05
    assert all(b % 2 == 0 for b in batches)  # every batch runs both seeds of its values
    assert result["runs"] == sum(batches)
