"""A rich progress bar on stderr behind the `progress(step, fraction)` callbacks that
conversions and downloads take."""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

from anechat.safe_text import sanitize_for_terminal

ProgressFn = Callable[[str, "float | None"], None]


@contextlib.contextmanager
def progress_bar(title: str) -> Iterator[ProgressFn]:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    with Progress(
        TextColumn(f"[bold]{title}[/] {{task.description}}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as bar:
        task = bar.add_task("", total=1.0)
        last_step: list[str] = [""]

        def update(step: str, fraction: float | None = None) -> None:
            if step != last_step[0] and not console.is_terminal:
                console.print(sanitize_for_terminal(f"{title}: {step}"), markup=False)
            last_step[0] = step
            bar.update(task, description=step, completed=fraction if fraction is not None else 0.0)

        yield update
