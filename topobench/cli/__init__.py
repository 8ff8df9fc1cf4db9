"""The ``topobench`` command: a thin Typer layer over the library.

Each sub-command lives in its own module here, parses options, makes one library call and
prints the result; library errors become a red message and exit status 2.
"""

from __future__ import annotations

import importlib

import typer

from topobench import __version__

app = typer.Typer(
    name="topobench",
    help="Topology metrics, losses and evaluation for thin-structure segmentation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Modules that define ``register(app)``; each adds its command(s) to the app.
_COMMAND_MODULES = [
    "topobench.cli.metrics_cmd",
    "topobench.cli.evaluate_cmd",
    "topobench.cli.synth_cmd",
    "topobench.cli.train_cmd",
    "topobench.cli.results_cmd",
    "topobench.cli.nnunet_cmd",
]


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"topobench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version."
    ),
) -> None:
    """Topology metrics, losses and evaluation for thin-structure segmentation."""


for _name in _COMMAND_MODULES:
    importlib.import_module(_name).register(app)


def main() -> None:
    """Console-script entry point."""
    app()
