"""``topobench synth OUT``: synthetic targets and degraded predictions with counted errors."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from topobench.cli._common import console, library_errors, parse_window


def register(app: typer.Typer) -> None:
    """Add the ``synth`` command to ``app``."""
    app.command("synth")(synth_command)


def synth_command(
    out: Annotated[Path, typer.Argument(help="Output folder (gt/, pred/, manifest.json).")],
    kind: Annotated[
        str, typer.Option("--kind", "-k", help="vessels2d|roads2d|tubes3d|membranes3d.")
    ] = "vessels2d",
    n: Annotated[int, typer.Option("--n", "-n", help="Number of cases.")] = 6,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (case i uses seed (S, i)).")] = 0,
    shape: Annotated[
        str | None, typer.Option("--shape", help="e.g. 320x320 or 48x96x96 (default per kind).")
    ] = None,
    gaps: Annotated[int, typer.Option("--gaps", help="Gaps per case (missed connections).")] = 3,
    bridges: Annotated[int, typer.Option("--bridges", help="Spurious bridges per case.")] = 2,
    blobs: Annotated[int, typer.Option("--blobs", help="False-positive blobs per case.")] = 2,
    noise: Annotated[
        int, typer.Option("--noise", help="Isolated false-positive pixels per case.")
    ] = 20,
    thinning: Annotated[
        bool, typer.Option("--thinning/--no-thinning", help="Thin thick parts.")
    ] = True,
    window: Annotated[
        str | None,
        typer.Option("--window", help="Evaluation window the gaps are designed for (e.g. 375)."),
    ] = None,
    connectivity: Annotated[
        int | None,
        typer.Option("--connectivity", "-c", help="Foreground connectivity (default 8 / 26)."),
    ] = None,
    file_format: Annotated[
        str | None,
        typer.Option(
            "--format", help="File suffix: png (2D default), nii.gz (3D default), tif, npy, npz."
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing.")] = False,
) -> None:
    """Write ground-truth masks of thin structures and predictions degraded in known ways."""
    from topobench.synth import synthesize

    size = parse_window(shape)
    with library_errors():
        manifest = synthesize(
            out,
            kind=kind,  # type: ignore[arg-type]
            n=n,
            seed=seed,
            shape=(size,) * (2 if kind.endswith("2d") else 3) if isinstance(size, int) else size,
            file_format=file_format,
            gaps=gaps,
            bridges=bridges,
            blobs=blobs,
            noise=noise,
            thinning=thinning,
            window=parse_window(window),
            connectivity=connectivity,
        )
    if quiet:
        return
    table = Table(title=f"{n} {kind} cases in {out}", title_justify="left")
    for col in ("case", "shape", "gaps", "bridges", "blobs", "noise px", "thinned px", "e0-Gt"):
        table.add_column(col, justify="left" if col == "case" else "right", no_wrap=col == "case")
    for case in manifest["cases"]:
        e = case["errors"]
        table.add_row(
            case["case"],
            "x".join(map(str, case["shape"])),
            str(e["gaps"]),
            str(e["bridges"]),
            str(e["blobs"]),
            str(e["noise_pixels"]),
            str(e["thinned_pixels"]),
            f"{case['expected']['e0_gt']:g}",
        )
    console.print(table)
    console.print(f"manifest: {out / 'manifest.json'}")
