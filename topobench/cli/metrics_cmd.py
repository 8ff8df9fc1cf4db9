"""``topobench betti FILE...``: Betti numbers of mask files."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from topobench.cli._common import console, library_errors


def betti(
    files: list[Path] = typer.Argument(..., help="Mask files (PNG, TIFF, NPY/NPZ, NIfTI)."),
    connectivity: int | None = typer.Option(
        None, "--connectivity", "-c", help="4/8 in 2D, 6/26 in 3D (default: 8 / 26)."
    ),
    threshold: float | None = typer.Option(
        None, "--threshold", help="Binarise probability maps as value > threshold."
    ),
    csv: bool = typer.Option(False, "--csv", help="Print CSV instead of a table."),
) -> None:
    """Print the Betti numbers (components, holes, cavities) of each mask."""
    from topobench.io import read_mask
    from topobench.masks import resolve_connectivity
    from topobench.metrics import betti_numbers

    header = ("file", "shape", "connectivity", "b0", "b1", "b2")
    rows = []
    with library_errors():
        for path in files:
            mask = read_mask(path, threshold=threshold)
            c = resolve_connectivity(connectivity, mask.ndim)
            b = betti_numbers(mask, connectivity=c)
            rows.append((str(path), "x".join(map(str, mask.shape)), str(c), *map(str, b),
                         *([""] if len(b) == 2 else [])))
    if csv:
        for row in (header, *rows):
            typer.echo(",".join(row))
        return
    table = Table(*header)
    for row in rows:
        table.add_row(*row)
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("betti")(betti)
