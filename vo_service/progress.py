"""Progress bars with rate and ETA for long command-line work (rich)."""

from __future__ import annotations

from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

console = Console(stderr=True, soft_wrap=True)  # long paths stay on one line


class _Rate(ProgressColumn):
    """Items per second over the task so far."""

    def __init__(self, unit: str):
        super().__init__()
        self.unit = unit

    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        text = f"{speed:,.0f} {self.unit}/s" if speed else f"? {self.unit}/s"
        return Text(text, style="progress.data.speed")


@contextmanager
def progress_bar(description: str, total: int | None, unit: str = "items", enabled: bool = True):
    """Yield ``advance(n)``; shows a bar on stderr unless disabled."""
    if not enabled:
        yield lambda n=1: None
        return
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TaskProgressColumn(), _Rate(unit), TimeElapsedColumn(), TextColumn("ETA"),
               TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n=1: progress.advance(task, n)
