"""How hard each mutation canary is to find: examples the state machine's search needs.

``tests/property/test_mutants.py`` runs one derandomized search per mutant — a single draw.
Here each mutant is hunted under several fixed seeds (random search, no shrinking, up to
``--budget`` examples) and the examples each hunt needed are recorded, with the share found
within the ``ci`` profile's 400 examples: the chance that one CI run catches a regression of
that kind. The nightly profile (10,000 examples) finds all of them.

Run from the repository root: ``.venv/bin/python -m bench.mutants [--seeds 5]``; it writes
``bench/results/mutants-<date>.json``.
"""

import argparse
import statistics
import time

import hypothesis.core
from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

from bench.common import record
from tests.property.mutants import MUTANTS, Mutant
from tests.property.test_cluster_machine import ClusterMachine
from tests.property.test_mutants import BUDGET, EXAMPLES

CI_EXAMPLES = EXAMPLES


def hunt(mutant: Mutant, seed: int, budget: int) -> int | None:
    """Examples the search under ``seed`` needed to fail on ``mutant``'s invariant; ``None`` if
    it did not within ``budget`` (or failed on another invariant)."""
    hypothesis.core.global_force_seed = seed  # type: ignore[attr-defined]
    ClusterMachine.examples = 0
    search = settings(BUDGET, max_examples=budget, derandomize=False)
    try:
        with mutant.applied():
            run_state_machine_as_test(ClusterMachine, settings=search)
    except AssertionError as failure:
        return ClusterMachine.examples if mutant.caught_by in str(failure) else None
    finally:
        hypothesis.core.global_force_seed = None  # type: ignore[attr-defined]
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="hunts per mutant")
    parser.add_argument("--budget", type=int, default=2000, help="examples per hunt at most")
    args = parser.parse_args()
    rows = []
    for mutant in MUTANTS:
        started = time.perf_counter()
        found = [hunt(mutant, seed, args.budget) for seed in range(args.seeds)]
        hits = sorted(n for n in found if n is not None)
        rows.append(
            {
                "mutant": mutant.name,
                "caught_by": mutant.caught_by,
                "examples": found,
                "median": statistics.median(hits) if hits else None,
                "found_within_ci": sum(n <= CI_EXAMPLES for n in hits) / len(found),
                "seconds": round(time.perf_counter() - started, 1),
            }
        )
        print(f"{mutant.name}: {found}", flush=True)
    path = record(
        "mutants",
        {"seeds": args.seeds, "budget": args.budget, "ci_examples": CI_EXAMPLES, "mutants": rows},
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
