"""A progress bar for long runs, on stderr, only when someone is watching."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

Advance = Callable[[float, float], None]


@contextmanager
def progress_bar(*, enabled: bool, label: str) -> Iterator[Advance | None]:
    """Yield a callback ``advance(done, total)`` drawing a bar, or None when disabled."""
    if not enabled:
        yield None
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=1.0)

        def advance(done: float, total: float) -> None:
            bar.update(task, completed=done / total if total else 1.0)

        yield advance
