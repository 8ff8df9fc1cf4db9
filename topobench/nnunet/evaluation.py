"""Topology metrics for nnU-Net's prediction folders, with the topological post-processing.

nnU-Net writes its predictions (``fold_K/validation/`` after training, or the output folder of
``nnUNetv2_predict``) and a ``summary.json`` with Dice and IoU. :func:`evaluate_predictions`
adds topobench's metrics (:func:`topobench.metrics.evaluate_case`) for the same cases and,
given the pretraining model's predictions, the paper's post-processing
(:func:`topobench.postprocess.keep_supported`): the fine-tuned prediction's components that the
pretrained one supports. It writes, into ``out_dir`` (default ``<pred_dir>/topobench``):

- ``metrics_raw.csv``: the predictions as they are;
- ``metrics_pretrained.csv`` and ``metrics_postprocessed.csv``: with ``pretrained_dir``;
- ``postprocessed/``: the post-processed predictions, in nnU-Net's format and geometry;
- ``summary.json``: means per variant, the metric configuration and versions;
- ``run.json``: with ``pretrained_dir``, for the validation folder of a topobench trainer (whose
  fold folder holds ``topobench.json``), a run record that ``topobench results`` reads like a
  ``topobench train`` run.

The CSV columns are those of topobench's run record (``case``, the metric names, ``seconds``),
so the results aggregator reads them like a ``topobench train`` run. Files are read and written
with nnU-Net's own reader/writer when nnU-Net is installed (every format it writes; geometry
kept), with :mod:`topobench.io` otherwise.
"""

from __future__ import annotations

import csv
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from topobench import __version__
from topobench.catalog import RUN_FORMAT
from topobench.errors import InvalidParameterError, ReadError, TopobenchError
from topobench.io import file_stem, is_supported
from topobench.metrics import METRIC_NAMES, evaluate_case, resolve_protocol
from topobench.postprocess import keep_supported

__all__ = [
    "NnunetEvaluation",
    "VARIANTS",
    "evaluate_predictions",
    "reference_folder",
    "run_record",
]

VARIANTS = ("raw", "pretrained", "postprocessed")
"""Result variants: the predictions, the pretraining model's, the post-processed ones."""

TRAINER_CONFIG_FILE = "topobench.json"
"""Written by the topobench trainers into each fold folder (see topobench.nnunet.trainers)."""

_IGNORED_FILES = {"summary.json", "dataset.json", "plans.json", "predict_from_raw_data_args.json"}


@dataclass(frozen=True)
class NnunetEvaluation:
    """Per-case metrics of an nnU-Net prediction folder.

    Attributes
    ----------
    out_dir : Path
        Where the CSVs, ``summary.json`` and ``postprocessed/`` were written.
    rows : dict of str to list of dict
        Variant (:data:`VARIANTS`) -> one row per case: ``case``, metrics, ``seconds``.
    protocol : dict
        The full metric configuration.
    """

    out_dir: Path
    rows: dict[str, list[dict[str, Any]]]
    protocol: dict[str, Any] = field(default_factory=dict)

    def means(self) -> dict[str, dict[str, float]]:
        """Variant -> metric -> mean over the cases."""
        out: dict[str, dict[str, float]] = {}
        for variant, rows in self.rows.items():
            names = [k for k in METRIC_NAMES if rows and k in rows[0]]
            out[variant] = {k: float(np.mean([r[k] for r in rows])) for k in names}
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (what ``summary.json`` holds)."""
        return {
            "format": "topobench-nnunet-evaluation/1",
            "topobench_version": __version__,
            "n_cases": len(next(iter(self.rows.values()), [])),
            "protocol": self.protocol,
            "mean": self.means(),
        }


class _MaskFiles:
    """Reads label files as bool masks and writes them back in the same format."""

    def __init__(self, example: Path):
        self._rw = None
        try:
            from nnunetv2.imageio.reader_writer_registry import (
                determine_reader_writer_from_file_ending,
            )
        except ImportError:
            return
        ending = "".join(example.suffixes[-2:]) if example.name.endswith(".nii.gz") else (
            example.suffix
        )
        try:
            self._rw = determine_reader_writer_from_file_ending(
                ending, str(example), verbose=False
            )()
        except Exception:  # nnU-Net raises a bare RuntimeError for unknown endings
            self._rw = None

    def read(self, path: Path, label: int) -> tuple[np.ndarray, Any]:
        """Mask ``(H, W)`` or ``(Z, H, W)`` of ``label`` and what :meth:`write` needs."""
        if self._rw is None:
            from topobench.io import read_array

            arr, has_channels = read_array(path)
            if has_channels:
                raise ReadError(f"{path}: expected a label image, got colour channels")
            return arr == label, None
        try:
            seg, props = self._rw.read_seg(str(path))
        except Exception as exc:
            raise ReadError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from exc
        spatial = seg[0]  # nnU-Net: (1, Z, Y, X); 2D images have Z = 1
        mask = spatial == label
        return (mask[0] if mask.shape[0] == 1 else mask), (spatial.shape, props)

    def write(self, path: Path, mask: np.ndarray, label: int, context: Any) -> None:
        """Write ``mask`` as a label file holding 0 and ``label``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        if self._rw is None:
            from topobench.io import write_mask

            write_mask(path, mask)
            return
        shape, props = context
        seg = mask.reshape(shape).astype(np.uint8 if label < 255 else np.uint16) * label
        self._rw.write_seg(seg, str(path), props)


def _label_files(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise ReadError(f"{folder}: no such folder")
    files = sorted(
        p for p in folder.iterdir()
        if p.is_file() and p.name not in _IGNORED_FILES and is_supported(p)
    )
    return {file_stem(p): p for p in files}


def _pair(pred: dict[str, Path], other: dict[str, Path], what: str) -> None:
    missing = sorted(set(pred) - set(other))
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise TopobenchError(f"{len(missing)} prediction(s) without a {what} file: {shown}")


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def reference_folder(pred_dir: str | Path) -> Path:
    """The reference labels of an nnU-Net validation folder: ``gt_segmentations`` of its dataset
    under ``$nnUNet_preprocessed``.

    Raises
    ------
    TopobenchError
        ``pred_dir`` is not ``<Dataset>/<Trainer>__<Plans>__<config>/fold_K/validation``, or
        ``nnUNet_preprocessed`` is not set.
    """
    folder = Path(pred_dir).resolve()
    dataset = folder.parents[2].name if len(folder.parents) > 2 else ""
    is_validation = (
        folder.name == "validation"
        and folder.parent.name.startswith("fold_")
        and folder.parents[1].name.count("__") == 2
        and dataset.startswith("Dataset")
    )
    if not is_validation:
        raise TopobenchError(
            f"{pred_dir}: give the reference folder; it can be found only for nnU-Net's "
            "<Dataset>/<Trainer>__<Plans>__<config>/fold_K/validation folders"
        )
    preprocessed = os.environ.get("nnUNet_preprocessed")
    if not preprocessed:
        raise TopobenchError(
            "nnUNet_preprocessed is not set: give the reference folder or set the variable"
        )
    return Path(preprocessed) / dataset / "gt_segmentations"


def evaluate_predictions(
    pred_dir: str | Path,
    gt_dir: str | Path | None = None,
    *,
    pretrained_dir: str | Path | None = None,
    out_dir: str | Path | None = None,
    protocol: str = "default",
    label: int = 1,
    write_postprocessed: bool = True,
    workers: int | None = 1,
    progress: Callable[[str, int, int], None] | None = None,
    **overrides: Any,
) -> NnunetEvaluation:
    """Topology metrics of an nnU-Net prediction folder, optionally post-processed.

    Parameters
    ----------
    pred_dir : path
        nnU-Net predictions (e.g. ``.../fold_0/validation`` of the fine-tuned model).
    gt_dir : path, optional
        Reference labels with the same file names (``nnUNet_raw/<Dataset>/labelsTr`` or
        ``nnUNet_preprocessed/<Dataset>/gt_segmentations``). Default, for a validation folder
        ``<Dataset>/<Trainer>__<Plans>__<config>/fold_K/validation``: that dataset's
        ``gt_segmentations`` under ``$nnUNet_preprocessed``.
    pretrained_dir : path, optional
        The pretraining model's predictions of the same cases; enables the post-processing.
    out_dir : path, optional
        Output folder; default ``<pred_dir>/topobench``.
    protocol : str
        Metric protocol (``roads``, ``hrf``, ``vessap``, ``cld``, ``default``); ``**overrides``
        sets single parameters (see :func:`topobench.metrics.resolve_protocol`).
    label : int
        The foreground label in nnU-Net's label files.
    write_postprocessed : bool
        Write the post-processed predictions into ``out_dir/postprocessed``.
    workers : int, optional
        Threads per case for the windowed metrics.
    progress : callable, optional
        Called as ``progress(case, done, total)`` after each case.

    Returns
    -------
    NnunetEvaluation

    Raises
    ------
    TopobenchError
        Missing folders, predictions without a reference (or pretrained) file, unreadable files,
        mismatched shapes.
    """
    if label < 1:
        raise InvalidParameterError(f"label: expected a foreground label >= 1, got {label}")
    pred_dir = Path(pred_dir)
    out = Path(out_dir) if out_dir is not None else pred_dir / "topobench"
    proto = resolve_protocol(protocol, **overrides)
    preds = _label_files(pred_dir)
    if not preds:
        raise ReadError(f"{pred_dir}: no prediction files")
    if gt_dir is None:
        gt_dir = reference_folder(pred_dir)
    refs = _label_files(Path(gt_dir))
    _pair(preds, refs, "reference")
    pres: dict[str, Path] | None = None
    if pretrained_dir is not None:
        pres = _label_files(Path(pretrained_dir))
        _pair(preds, pres, "pretrained")

    files = _MaskFiles(next(iter(preds.values())))
    rows: dict[str, list[dict[str, Any]]] = {"raw": []}
    if pres is not None:
        rows["pretrained"], rows["postprocessed"] = [], []
    for case, path in preds.items():
        pred, context = files.read(path, label)
        target, _ = files.read(refs[case], label)
        if pred.shape != target.shape:
            raise TopobenchError(
                f"{case}: prediction shape {pred.shape} differs from reference {target.shape}"
            )
        results = {"raw": pred}
        if pres is not None:
            pre, _ = files.read(pres[case], label)
            if pre.shape != pred.shape:
                raise TopobenchError(
                    f"{case}: pretrained shape {pre.shape} differs from prediction {pred.shape}"
                )
            post = keep_supported(pred, pre, connectivity=proto.connectivity)
            results.update(pretrained=pre, postprocessed=post)
            if write_postprocessed:
                files.write(out / "postprocessed" / path.name, post, label, context)
        for variant, mask in results.items():
            start = time.perf_counter()
            metrics = evaluate_case(mask, target, protocol=proto, workers=workers)
            rows[variant].append(
                {"case": case, **metrics, "seconds": round(time.perf_counter() - start, 4)}
            )
        if progress is not None:
            progress(case, len(rows["raw"]), len(preds))

    result = NnunetEvaluation(out_dir=out, rows=rows, protocol=proto.to_dict())
    for variant, variant_rows in rows.items():
        _write_csv(out / f"metrics_{variant}.csv", variant_rows)
    summary = result.to_dict()
    summary.update(
        pred_dir=str(pred_dir), gt_dir=str(gt_dir),
        pretrained_dir=None if pretrained_dir is None else str(pretrained_dir),
        postprocessing="keep_supported" if pres is not None else None,
    )
    nnunet_summary = pred_dir / "summary.json"
    if nnunet_summary.is_file():
        try:
            summary["nnunet_foreground_mean"] = json.loads(
                nnunet_summary.read_text(encoding="utf-8")
            ).get("foreground_mean")
        except (OSError, ValueError):
            pass
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    trainer_config = pred_dir / ".." / TRAINER_CONFIG_FILE
    if pres is not None and trainer_config.is_file():
        record = run_record(json.loads(trainer_config.read_text(encoding="utf-8")), proto.to_dict())
        (out / "run.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
    return result


def run_record(trainer_config: dict[str, Any], protocol: dict[str, Any]) -> dict[str, Any]:
    """A topobench run record (``run.json``, format :data:`topobench.catalog.RUN_FORMAT`) for an
    nnU-Net fine-tuning run, from its trainer's ``topobench.json`` and the metric configuration.

    Fields nnU-Net does not record (pretraining epochs, seed, timings) are null.
    """
    return {
        "format": RUN_FORMAT,
        "topobench_version": __version__,
        "dataset": trainer_config.get("dataset", ""),
        "loss": trainer_config["loss"],
        "method": trainer_config.get("method", trainer_config["loss"]),
        "gamma": trainer_config.get("gamma"),
        "alpha": trainer_config.get("alpha"),
        "critical_mask": trainer_config.get("critical_mask"),
        "epochs": None,
        "finetune_epochs": trainer_config.get("num_epochs"),
        "fold": trainer_config.get("fold"),
        "seed": None,
        "protocol": protocol,
        "device": "",
        "versions": trainer_config.get("versions", {}),
        "seconds_per_epoch": {"pretrain": None, "finetune": None},
        "seconds_total": {"pretrain": None, "finetune": None, "inference": None,
                          "evaluation": None},
        "peak_memory_mb": None,
        "pretrained_from": None,
        "status": "complete",
        "trainer": trainer_config.get("trainer"),
    }
