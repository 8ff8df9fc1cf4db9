"""Topology metrics for nnU-Net's prediction folders, with the topological post-processing.

nnU-Net writes its predictions (``fold_K/validation/`` after training, or the output folder of
``nnUNetv2_predict``) and a ``summary.json`` with Dice and IoU. :func:`evaluate_predictions`
adds topobench's metrics (:func:`topobench.metrics.evaluate_case`) for the same cases and,
given the pretraining model's predictions, the paper's post-processing
(:func:`topobench.postprocess.keep_supported`): the fine-tuned prediction's components that the
pretrained one supports. Files are read (and the post-processed ones written) with nnU-Net's
own reader/writer when nnU-Net is installed (every format it writes; geometry kept), with
:mod:`topobench.io` otherwise; the masks go through the evaluation engine
(:func:`topobench.evaluate.evaluate_cases`). It writes, into ``out_dir`` (default
``<pred_dir>/topobench``), a run directory of format ``topobench-run/2``:

- ``evaluation/<variant>/``: the engine's store for each variant (``cases.csv`` with ``case,
  shape, <metrics>, seconds``, ``inputs.csv``, ``failures.csv``, ``summary.json``): ``raw``
  (the predictions as they are) and, with ``pretrained_dir``, ``pretrained`` and
  ``postprocessed``;
- ``postprocessed/``: the post-processed predictions, in nnU-Net's format and geometry;
- ``summary.json``: means per variant, the metric configuration and versions;
- ``run.json``: with ``pretrained_dir``, for the validation folder of a topobench trainer (whose
  fold folder holds ``topobench.json``), a run record (:class:`topobench.run_record.RunRecord`)
  that ``topobench results`` reads like a ``topobench train`` run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from topobench import __version__
from topobench.errors import InvalidParameterError, ReadError, TopobenchError
from topobench.evaluate import ArrayCase, CaseResult, evaluate_cases, summarize
from topobench.evaluate.store import write_json_atomic
from topobench.io import file_stem, is_supported
from topobench.metrics import METRIC_NAMES, Protocol, resolve_protocol
from topobench.postprocess import keep_supported

__all__ = [
    "NnunetEvaluation",
    "VARIANTS",
    "evaluate_predictions",
    "reference_folder",
    "run_record",
]

VARIANTS = ("raw", "pretrained", "postprocessed")
EVALUATION_DIR = "evaluation"
"""Sub-folder of the output folder holding one evaluation store per variant."""
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
        Where ``evaluation/<variant>/``, ``summary.json`` and ``postprocessed/`` were written.
    rows : dict of str to list of dict
        Variant (:data:`VARIANTS`) -> one row per case (case order): ``case``, metrics,
        ``seconds``, as in the variant's ``cases.csv``.
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
            out[variant] = {k: s["mean"] for k, s in summarize(rows, names).items()}
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



@dataclass(frozen=True)
class _Folders:
    """The prediction folder's files and their partners (reference, pretrained)."""

    pred_dir: Path
    gt_dir: Path
    pretrained_dir: Path | None
    preds: dict[str, Path]
    refs: dict[str, Path]
    pres: dict[str, Path] | None


def _folders(
    pred_dir: str | Path, gt_dir: str | Path | None, pretrained_dir: str | Path | None
) -> _Folders:
    """List and pair the folders; every prediction needs a reference (and pretrained) file."""
    pred_dir = Path(pred_dir)
    preds = _label_files(pred_dir)
    if not preds:
        raise ReadError(f"{pred_dir}: no prediction files")
    gt = Path(gt_dir) if gt_dir is not None else reference_folder(pred_dir)
    refs = _label_files(gt)
    _pair(preds, refs, "reference")
    pres = None
    if pretrained_dir is not None:
        pres = _label_files(Path(pretrained_dir))
        _pair(preds, pres, "pretrained")
    pre_dir = Path(pretrained_dir) if pretrained_dir is not None else None
    return _Folders(pred_dir, gt, pre_dir, preds, refs, pres)


def _variant_cases(
    folders: _Folders,
    *,
    label: int,
    protocol: Protocol,
    postprocessed_dir: Path | None,
) -> dict[str, list[ArrayCase]]:
    """Read every case with nnU-Net's reader; variant -> the cases to evaluate.

    The post-processed prediction (:func:`~topobench.postprocess.keep_supported` of the
    prediction by the pretrained one) is computed here and written to ``postprocessed_dir``.
    """
    files = _MaskFiles(next(iter(folders.preds.values())))
    cases: dict[str, list[ArrayCase]] = {"raw": []}
    if folders.pres is not None:
        cases["pretrained"], cases["postprocessed"] = [], []
    for case, path in folders.preds.items():
        pred, context = files.read(path, label)
        target, _ = files.read(folders.refs[case], label)
        if pred.shape != target.shape:
            raise TopobenchError(
                f"{case}: prediction shape {pred.shape} differs from reference {target.shape}"
            )
        cases["raw"].append(ArrayCase(case, pred, target))
        if folders.pres is None:
            continue
        pre, _ = files.read(folders.pres[case], label)
        if pre.shape != pred.shape:
            raise TopobenchError(
                f"{case}: pretrained shape {pre.shape} differs from prediction {pred.shape}"
            )
        post = keep_supported(pred, pre, connectivity=protocol.connectivity)
        if postprocessed_dir is not None:
            files.write(postprocessed_dir / path.name, post, label, context)
        cases["pretrained"].append(ArrayCase(case, pre, target))
        cases["postprocessed"].append(ArrayCase(case, post, target))
    return cases


def _variant_rows(report: Any) -> list[dict[str, Any]]:
    """The rows of a variant's ``cases.csv`` as ``{case, <metrics>: float, seconds: float}``."""
    from topobench.evaluate.store import read_rows

    rows = read_rows(report.out_dir / "cases.csv", report.summary["columns"], repair=False)
    metrics = report.summary["columns"][2:-1]
    return [
        {"case": r["case"], **{m: float(r[m]) for m in metrics if r[m] != ""},
         "seconds": float(r["seconds"])}
        for r in rows
    ]


def _evaluate_variants(
    variants: dict[str, list[ArrayCase]],
    out: Path,
    folders: _Folders,
    *,
    protocol: Protocol,
    label: int,
    workers: int,
    resume: bool,
    progress: Callable[[str, int, int], None] | None,
) -> dict[str, list[dict[str, Any]]]:
    """Each variant through :func:`~topobench.evaluate.evaluate_cases` into
    ``out/evaluation/<variant>/``; a case that fails is an error (as nnU-Net's own evaluation)."""
    total = sum(len(cases) for cases in variants.values())
    done = 0

    def on_result(result: CaseResult) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(result.case, done, total)

    rows: dict[str, list[dict[str, Any]]] = {}
    for variant, cases in variants.items():
        provenance = {
            "variant": variant,
            "pred_dir": str(folders.pred_dir.resolve()),
            "gt_dir": str(folders.gt_dir.resolve()),
            "pretrained_dir": (
                None if folders.pretrained_dir is None else str(folders.pretrained_dir.resolve())
            ),
            "label": label,
            "postprocessing": "keep_supported" if variant == "postprocessed" else None,
        }
        report = evaluate_cases(
            cases, out / EVALUATION_DIR / variant, protocol=protocol, workers=workers,
            resume=resume, overwrite=not resume, provenance=provenance, on_result=on_result,
        )
        if report.failures:
            case, reason = report.failures[0]
            raise TopobenchError(f"{variant} prediction of {case}: {reason}")
        done += report.n_skipped
        rows[variant] = _variant_rows(report)
    return rows


def _write_summary(result: NnunetEvaluation, folders: _Folders, has_pretrained: bool) -> None:
    """``out_dir/summary.json``: means per variant, configuration, nnU-Net's own Dice."""
    summary = result.to_dict()
    summary.update(
        pred_dir=str(folders.pred_dir), gt_dir=str(folders.gt_dir),
        pretrained_dir=None if folders.pretrained_dir is None else str(folders.pretrained_dir),
        postprocessing="keep_supported" if has_pretrained else None,
    )
    nnunet_summary = folders.pred_dir / "summary.json"
    if nnunet_summary.is_file():
        try:
            summary["nnunet_foreground_mean"] = json.loads(
                nnunet_summary.read_text(encoding="utf-8")
            ).get("foreground_mean")
        except (OSError, ValueError):
            pass
    write_json_atomic(result.out_dir / "summary.json", summary)


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
    resume: bool = False,
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
        Processes of the evaluation engine (1: this process, whose threads then share the
        windows of a single case; None: all cores).
    resume : bool
        Keep the rows of an earlier evaluation into ``out_dir`` whose masks are unchanged
        (the engine's resume); without it earlier results are replaced.
    progress : callable, optional
        Called as ``progress(case, done, total)`` after each case of each variant (``total``:
        cases times variants).

    Returns
    -------
    NnunetEvaluation

    Raises
    ------
    TopobenchError
        Missing folders, predictions without a reference (or pretrained) file, unreadable files,
        mismatched shapes, a case the metrics refuse.
    """
    if label < 1:
        raise InvalidParameterError(f"label: expected a foreground label >= 1, got {label}")
    out = Path(out_dir) if out_dir is not None else Path(pred_dir) / "topobench"
    proto = resolve_protocol(protocol, **overrides)
    folders = _folders(pred_dir, gt_dir, pretrained_dir)
    variants = _variant_cases(
        folders, label=label, protocol=proto,
        postprocessed_dir=out / "postprocessed" if write_postprocessed else None,
    )
    n_workers = workers if workers is not None else (os.cpu_count() or 1)
    rows = _evaluate_variants(variants, out, folders, protocol=proto, label=label,
                              workers=n_workers, resume=resume, progress=progress)
    result = NnunetEvaluation(out_dir=out, rows=rows, protocol=proto.to_dict())
    _write_summary(result, folders, folders.pres is not None)
    trainer_config = folders.pred_dir / ".." / TRAINER_CONFIG_FILE
    if folders.pres is not None and trainer_config.is_file():
        from topobench.run_record import write_run_record

        config = json.loads(trainer_config.read_text(encoding="utf-8"))
        write_run_record(out / "run.json", _record(config, proto.to_dict()))
    return result


def run_record(trainer_config: dict[str, Any], protocol: dict[str, Any]) -> dict[str, Any]:
    """A topobench run record (``run.json``, format :data:`topobench.catalog.RUN_FORMAT`) for an
    nnU-Net fine-tuning run, from its trainer's ``topobench.json`` and the metric configuration:
    :meth:`topobench.run_record.RunRecord.to_dict`.

    Fields nnU-Net does not record (pretraining epochs, seed, timings) are null.
    """
    return _record(trainer_config, protocol).to_dict()


def _record(trainer_config: dict[str, Any], protocol: dict[str, Any]) -> Any:
    from topobench.run_record import RunRecord

    return RunRecord(
        topobench_version=__version__,
        dataset=trainer_config.get("dataset", ""),
        loss=trainer_config["loss"],
        method=trainer_config.get("method", trainer_config["loss"]),
        gamma=trainer_config.get("gamma"),
        alpha=trainer_config.get("alpha"),
        critical_mask=trainer_config.get("critical_mask"),
        finetune_epochs=trainer_config.get("num_epochs"),
        fold=trainer_config.get("fold"),
        protocol=protocol,
        versions=trainer_config.get("versions", {}),
        status="complete",
        trainer=trainer_config.get("trainer"),
    )
