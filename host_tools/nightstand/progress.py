"""Progress bars for long host-side work (rich), quiet when output is not a terminal."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

err_console = Console(stderr=True)


@contextmanager
def progress_bar(
    description: str, total: float, unit: str = ""
) -> Iterator[Callable[[float], None]]:
    """Yield update(done) for a bar of `total`; a no-op bar when stderr is not a terminal."""
    if not sys.stderr.isatty():
        yield lambda done: None
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[shown]}"),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    ) as prog:
        task = prog.add_task(description, total=total, shown="")

        def update(done: float) -> None:
            prog.update(task, completed=done, shown=f"{done:,.0f}/{total:,.0f}{unit}")

        yield update
