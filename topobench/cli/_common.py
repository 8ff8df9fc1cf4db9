"""Shared pieces of the CLI: the console and the translation of library errors."""

from __future__ import annotations

import errno
import re
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


#: Library messages name Python parameters; the CLI shows its options instead.
_CLI_NAMES = (
    (re.compile(r"\bthreshold=\.\.\."), "--threshold T (-t T)"),
    (re.compile(r"\bthreshold=(\d[\d.]*\d|\d)"), r"-t \1"),
    (re.compile(r"\bchannel=\.\.\."), "--channel C"),
    (re.compile(r"\bchannel=(-?\d+)"), r"--channel \1"),
    (re.compile(r"\bresume=True"), "--resume"),
    (re.compile(r"\boverwrite=True"), "--overwrite"),
)

#: errno values of a file system the user has to fix (not a bug): a clean message, exit 2.
_USER_ERRNOS = frozenset(
    {
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EACCES,
        errno.EPERM,
        errno.EROFS,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.EEXIST,
        errno.ENOENT,
        errno.ELOOP,
        errno.ENAMETOOLONG,
    }
)


def cli_names(message: str) -> str:
    """``message`` with the Python parameter names of the library replaced by CLI options."""
    for pattern, option in _CLI_NAMES:
        message = pattern.sub(option, message)
    return message


def print_error(message: str) -> None:
    """Print ``error: message`` on stderr, with CLI option names."""
    err_console.print(
        f"[bold red]error:[/] {escape(cli_names(message))}", highlight=False, soft_wrap=True
    )


@contextmanager
def library_errors() -> Iterator[None]:
    """Turn a :class:`TopobenchError` raised inside the block into a message and exit code 2.

    So is an ``OSError`` of the file system the user can fix (no space left, permission denied,
    read-only, a file where a folder is expected, ...): a message naming the file, no traceback.
    """
    try:
        yield
    except TopobenchError as exc:
        print_error(str(exc))
        raise typer.Exit(code=2) from None
    except OSError as exc:
        if exc.errno not in _USER_ERRNOS:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        hint = (
            " (free some space, then run again)"
            if exc.errno in (errno.ENOSPC, errno.EDQUOT)
            else ""
        )
        print_error(f"{where}{exc.strerror or exc}{hint}")
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
