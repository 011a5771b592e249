"""What the ModelService tests do on the real control plane, as a user would: ``kubectl``.

Samples are applied with ``kubectl apply`` into the test's namespace and judged by what
``kubectl get`` prints, column by column, so that the printer columns are checked exactly as a
user sees them.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fma.testcluster.cluster import kubectl
from tests.integration.operator.harness import OperatorProcess, World
from tests.unit.modelservice.helpers import REPO_SAMPLES as SAMPLES
from tests.unit.modelservice.helpers import sample_files

EPP_ROLE = "pod-read"
Obj = dict[str, Any]


def run(world: World, *args: str, stdin: str | None = None) -> str:
    proc = kubectl(world.cluster, "-n", world.namespace, *args, stdin=stdin, check=False)
    assert proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stderr}"
    return proc.stdout


def apply_sample(world: World, sample: str, *, base: bool = True) -> None:
    """``kubectl apply`` a sample's BaseConfig and ModelService (in that order)."""
    msvc_file, base_file = sample_files(SAMPLES, sample)
    if base:
        run(world, "apply", "-f", str(base_file))
    run(world, "apply", "-f", str(msvc_file))


def operator(world: World, *extra: str) -> OperatorProcess:
    return world.operator("--epp-cluster-role", EPP_ROLE, *extra)


def table(world: World, *args: str) -> dict[str, dict[str, str]]:
    """``kubectl get ARGS`` as {NAME: {COLUMN: cell}}, cells cut at the header's column
    starts (a blank cell stays blank, where splitting on spaces would shift the others)."""
    lines = run(world, "get", *args).splitlines()
    if not lines:
        return {}
    header = lines[0]
    # kubectl pads columns with at least three spaces; a header may hold one ("PREFILL READY").
    starts = [0, *(m.end() for m in re.finditer(r"  +(?=\S)", header))]
    names = [header[s:e].strip() for s, e in zip(starts, [*starts[1:], None], strict=True)]
    rows: dict[str, dict[str, str]] = {}
    for line in lines[1:]:
        cells = [line[s:e].strip() for s, e in zip(starts, [*starts[1:], None], strict=True)]
        row = dict(zip(names, cells, strict=True))
        rows[row["NAME"]] = row
    return rows


def get(world: World, *args: str) -> Obj:
    """``kubectl get ARGS -o json``."""
    answer: Obj = json.loads(run(world, "get", *args, "-o", "json"))
    return answer


def names(world: World, kind: str) -> set[str]:
    return {i["metadata"]["name"] for i in get(world, kind)["items"]}


def condition(obj: Obj, kind: str) -> Obj | None:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == kind), None)


def row_without_age(row: dict[str, str] | None) -> dict[str, str] | None:
    return None if row is None else {k: v for k, v in row.items() if k != "AGE"}
