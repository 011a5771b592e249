"""Sweeps give the same results in-process, in a process pool and on a Dask cluster."""

from dataclasses import replace

import pytest

from fma.api.scenario import Scenario
from fma.bench.compare import compare_result, tasks, variants
from fma.bench.digest import Digest
from fma.sweep import SweepError, run_tasks


def comparable(digests: list[Digest]) -> list[Digest]:
    return [replace(d, wall_s=0.0) for d in digests]


def test_serial_pool_and_dask_agree(small: Scenario) -> None:
    distributed = pytest.importorskip("distributed")
    columns = variants(["fma", "cold"], [], "lru")
    work = tasks(small, columns, [1, 2])
    serial = run_tasks(work, workers=1)
    pooled = run_tasks(work, workers=2)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        on_dask = run_tasks(work, cluster=cluster.scheduler_address)
    assert comparable(serial) == comparable(pooled) == comparable(on_dask)
    assert [d.label for d in serial] == ["fma", "fma", "cold", "cold"]
    assert [d.seed for d in serial] == [1, 2, 1, 2]
    assert compare_result(small, columns, [1, 2], serial) == compare_result(
        small, columns, [1, 2], on_dask
    )


def test_progress_reaches_the_total(small: Scenario) -> None:
    seen: list[tuple[int, int]] = []
    run_tasks(
        tasks(small, variants(["cold"], [], "lru"), [1, 2]),
        workers=1,
        progress=lambda d, t: seen.append((d, t)),
    )
    assert seen == [(1, 2), (2, 2)]


def test_unreachable_scheduler_is_one_line(small: Scenario) -> None:
    pytest.importorskip("distributed")
    with pytest.raises(SweepError, match="cannot reach the Dask scheduler"):
        run_tasks(
            tasks(small, variants(["cold"], [], "lru"), [1]),
            cluster="tcp://127.0.0.1:9",
            connect_timeout_s=1,
        )
