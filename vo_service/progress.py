"""Progress bars with rate and ETA for long command-line work (rich)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

console = Console(stderr=True, soft_wrap=True)  # long paths stay on one line

# (description, done, total, unit) of every bar as it advances, e.g. for a background
# job's status record (vo_service.archive.background)
Observer = Callable[[str, int, int | None, str], None]
_observers: list[Observer] = []


@contextmanager
def observe_progress(observer: Observer) -> Iterator[None]:
    """Also report every progress bar's count to ``observer`` while the body runs."""
    _observers.append(observer)
    try:
        yield
    finally:
        _observers.remove(observer)


class _Rate(ProgressColumn):
    """Items per second over the task so far."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        text = f"{speed:,.0f} {self.unit}/s" if speed else f"? {self.unit}/s"
        return Text(text, style="progress.data.speed")


@contextmanager
def progress_bar(description: str, total: int | None, unit: str = "items",
                 enabled: bool = True) -> Iterator[Callable[[int], None]]:
    """Show a progress bar on stderr for the duration of the ``with`` block.

    Parameters
    ----------
    description
        Label in front of the bar.
    total
        Number of items expected, or None when unknown (the bar then shows no ETA).
    unit
        Name of an item in the rate column ("spectra/s").
    enabled
        False for quiet runs (tests, ``--quiet``): nothing is drawn. Observers
        (:func:`observe_progress`) see the counts either way.

    Yields
    ------
    advance
        Call ``advance(n)`` (``n`` defaults to 1) after each ``n`` items done.
    """
    done = 0

    def notify(n: int = 1) -> None:
        nonlocal done
        done += n
        for observer in _observers:
            observer(description, done, total, unit)

    notify(0)
    if not enabled:
        yield notify
        return
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TaskProgressColumn(), _Rate(unit), TimeElapsedColumn(), TextColumn("ETA"),
               TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(description, total=total)

        def advance(n: int = 1) -> None:
            progress.advance(task, n)
            notify(n)

        yield advance
