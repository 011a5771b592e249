"""Running many simulations: in this process, in a local process pool, or on a Dask cluster.

Contract of :func:`run_tasks`: one :class:`~fma.runs.Digest` per task, in the order of the
tasks, and equal digests (all but ``wall_s``) whichever way they ran, because every run depends
only on its (scenario, seed) and runs share nothing. The executor changes how fast, never what.

- ``cluster="tcp://host:8786"``: the tasks go to that Dask distributed scheduler; its workers
  need this package installed (the same version).
- otherwise ``workers`` local processes (default: one per core); ``workers=1`` runs in this
  process, which is also what a single task does.
"""

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed

from fma.bench.digest import Digest, Task
from fma.runs import simulate

Progress = Callable[[int, int], None]
"""Called with (tasks done, total) as results arrive."""


class SweepError(Exception):
    """The sweep could not run (e.g. the Dask scheduler is unreachable); one line."""


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)


def run_tasks(
    tasks: Sequence[Task],
    *,
    workers: int | None = None,
    cluster: str | None = None,
    progress: Progress | None = None,
    connect_timeout_s: float = 20.0,
) -> list[Digest]:
    """Run every task; return their digests in task order (see the module docstring)."""
    if not tasks:
        return []
    if cluster is not None:
        return _on_dask(tasks, cluster, progress, connect_timeout_s)
    count = min(workers or default_workers(), len(tasks))
    if count <= 1:
        return _here(tasks, progress)
    return _in_pool(tasks, count, progress)


def _here(tasks: Sequence[Task], progress: Progress | None) -> list[Digest]:
    digests = []
    for done, task in enumerate(tasks, start=1):
        digests.append(simulate(task))
        if progress is not None:
            progress(done, len(tasks))
    return digests


def _in_pool(tasks: Sequence[Task], workers: int, progress: Progress | None) -> list[Digest]:
    # forkserver: workers fork from a clean server process, never from this one, whose
    # threads (a progress bar's, say) could hold a lock at the moment of a fork.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["fma.runs"])
    results: dict[int, Digest] = {}
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures: dict[Future[Digest], int] = {
            pool.submit(simulate, task): k for k, task in enumerate(tasks)
        }
        for future in as_completed(futures):
            results[futures[future]] = future.result()
            if progress is not None:
                progress(len(results), len(tasks))
    return [results[k] for k in range(len(tasks))]


def _on_dask(
    tasks: Sequence[Task], address: str, progress: Progress | None, timeout_s: float
) -> list[Digest]:
    try:
        from distributed import Client
        from distributed import as_completed as dask_completed
    except ImportError:
        raise SweepError("--cluster needs dask distributed: pip install 'fma[dist]'") from None
    try:
        client = Client(address, timeout=f"{timeout_s}s")  # type: ignore[no-untyped-call]
    except (OSError, TimeoutError) as error:
        raise SweepError(f"cannot reach the Dask scheduler at {address}: {error}") from None
    with client:
        futures = client.map(simulate, list(tasks), pure=False)
        for done, _ in enumerate(dask_completed(futures), start=1):  # type: ignore[no-untyped-call]
            if progress is not None:
                progress(done, len(tasks))
        digests: list[Digest] = client.gather(futures)  # type: ignore[no-untyped-call]
    return digests
