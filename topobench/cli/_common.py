"""Shared pieces of the CLI: the console and the translation of library errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.markup import escape

from topobench.catalog import LOSSES
from topobench.errors import TopobenchError

console = Console()
err_console = Console(stderr=True)


def default_gamma_help() -> str:
    """The default loss weights of :data:`topobench.catalog.LOSSES` for ``--gamma`` help texts,
    e.g. ``0.2 for cldice, compound_cldice, closs, closs_dice, thin_closs``."""
    by_gamma: dict[float, list[str]] = {}
    for info in LOSSES.values():
        if info.default_gamma is not None:
            by_gamma.setdefault(info.default_gamma, []).append(info.name)
    return "; ".join(f"{g:g} for {', '.join(names)}" for g, names in by_gamma.items())


@contextmanager
def library_errors() -> Iterator[None]:
    """Turn a :class:`TopobenchError` raised inside the block into a message and exit code 2."""
    try:
        yield
    except TopobenchError as exc:
        message = f"[bold red]error:[/] {escape(str(exc))}"
        err_console.print(message, highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from None


def parse_window(text: str | None) -> int | tuple[int, ...] | None:
    """Parse ``--window``: ``375``, ``64x1024x1024`` or ``64,1024,1024``; ``none``/empty -> None."""
    if text is None or text.strip().lower() in ("", "none", "whole"):
        return None
    parts = text.lower().replace("x", ",").split(",")
    try:
        values = tuple(int(p) for p in parts if p.strip())
    except ValueError:
        raise typer.BadParameter(
            f"expected a size like 375 or 64x1024x1024, got {text!r}"
        ) from None
    return values[0] if len(values) == 1 else values
