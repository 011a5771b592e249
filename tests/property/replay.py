"""Replay one generated scenario as the property tests run it: with a drain, then every check.

A failing property prints a one-line command that saves the scenario and runs this module::

    echo '<scenario JSON>' > /tmp/fma-replay.json && \
        .venv/bin/python -m tests.property.replay /tmp/fma-replay.json

It prints the breaches (none: exit 0) and writes the trace to ``events.jsonl`` beside the file.
"""

import json
import shlex
import sys
from pathlib import Path

from hypothesis import note

from fma.adapters.sim.runner import RunResult, run_scenario
from fma.api.scenario import Scenario
from fma.bench.invariants import check_all

DRAIN_S = 30 * 86400.0
"""Long enough for any generated queue to drain: the run ends when quiet, not at this time."""


def run_drained(scenario: Scenario) -> RunResult:
    return run_scenario(scenario, drain_s=DRAIN_S)


def replay_note(scenario: Scenario) -> None:
    """Attach the one-line replay command (with the scenario and its seed) to a failure."""
    text = shlex.quote(scenario.model_dump_json())
    note(
        f"seed {scenario.seed}; replay: echo {text} > /tmp/fma-replay.json && "
        ".venv/bin/python -m tests.property.replay /tmp/fma-replay.json"
    )


def main(argv: list[str]) -> int:
    path = Path(argv[1])
    scenario = Scenario.model_validate_json(path.read_text(encoding="utf-8"))
    result = run_drained(scenario)
    result.trace.write_jsonl(path.with_name("events.jsonl"))
    violations = check_all(result.trace.events)
    for violation in violations:
        print(json.dumps(violation))
    quiet = any(e["kind"] == "quiescent" for e in result.trace.events)
    print(f"seed {scenario.seed}: {len(violations)} breaches; quiescent: {quiet}", file=sys.stderr)
    return 1 if violations or not quiet else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
