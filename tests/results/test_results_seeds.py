"""Several seeds of one configuration: distinct runs, aggregated over seeds, paired by case."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from topobench.errors import ReadError
from topobench.results import aggregate_cells, build_table, load_results, table_to_frame

CASES = {0: ("a", "b", "c", "d"), 1: ("e", "f")}
RNG = np.random.default_rng(7)
# CLoss dice per (fold, seed): seed 2 of fold 0 holds only three cases (an unequal count shows
# whether seeds or rows are averaged)
CLOSS = {(f, s): RNG.uniform(0.5, 0.9, len(CASES[f]) - (f == 0 and s == 2))
         for f in CASES for s in range(3)}
DCE = {(f, s): RNG.uniform(0.4, 0.8, len(CASES[f])) for f in CASES for s in range(2)}


def _cases(fold: int, n: int) -> tuple[str, ...]:
    return CASES[fold][:n]


@pytest.fixture
def seeded(make_run: Callable[..., Path], tmp_path: Path) -> Path:
    """CLoss with seeds 0-2 and Dice & CE with seeds 0-1 on two folds of Roads."""
    for (fold, seed), dice in CLOSS.items():
        make_run(f"closs/f{fold}s{seed}", fold=fold, seed=seed, cases=_cases(fold, len(dice)),
                 values={"postprocessed": {"dice": dice}})
    for (fold, seed), dice in DCE.items():
        make_run(f"dce/f{fold}s{seed}", loss="dice_ce", method="Dice & CE", gamma=None,
                 fold=fold, seed=seed, cases=CASES[fold], values={"postprocessed": {"dice": dice}})
    return tmp_path / "runs"


def _cell(cells, method: str):
    return cells[(cells["method"] == method) & (cells["postprocessing"] == "with")
                 & (cells["metric"] == "dice")].iloc[0]


def test_seeds_are_distinct_runs_averaged_seed_by_seed(seeded: Path) -> None:
    tidy = load_results([seeded])
    assert sorted(set(tidy.loc[tidy["method"] == "CLoss", "seed"])) == [0.0, 1.0, 2.0]
    cell = _cell(aggregate_cells(tidy), "CLoss")
    # independent reference: run means, then mean over seeds per fold, then over folds
    fold_means = [np.mean([CLOSS[(f, s)].mean() for s in range(3)]) for f in CASES]
    seed_means = [np.mean([CLOSS[(f, s)].mean() for f in CASES]) for s in range(3)]
    pooled = np.concatenate(list(CLOSS.values()))
    assert cell["mean"] == pytest.approx(np.mean(fold_means))
    assert cell["fold_std"] == pytest.approx(np.std(fold_means, ddof=1))
    assert cell["seed_std"] == pytest.approx(np.std(seed_means, ddof=1))
    assert cell["std"] == pytest.approx(np.std(pooled, ddof=1))
    assert (cell["n"], cell["n_folds"], cell["n_seeds"]) == (len(pooled), 2, 3)
    # not the mean over all (seed, case) rows of a fold, which weighs seed 2 less
    rows_mean = np.mean([np.concatenate([CLOSS[(f, s)] for s in range(3)]).mean()
                         for f in CASES])
    assert abs(cell["mean"] - rows_mean) > 1e-6
    # the nnU-Net rows of every run hold the same figures (one pretrained model): counted once,
    # but for seed 2 of fold 0, evaluated on fewer cases, which stays a seed of its own
    nnunet = aggregate_cells(tidy[tidy["method"] == "nnU-Net"])
    assert set(nnunet["n_seeds"]) == {2} and set(nnunet["n"]) == {4 + 2 + 3}


def test_pretrained_models_of_several_seeds_are_kept_apart(make_run: Callable[..., Path],
                                                           tmp_path: Path) -> None:
    for seed in range(3):
        pre = [0.4 + 0.1 * seed, 0.5] if seed < 2 else [0.4, 0.5]  # seed 2 reuses seed 0's
        make_run(f"closs{seed}", seed=seed, cases=("a", "b"),
                 values={"pretrained": {"dice": pre}})
    cells = aggregate_cells(load_results([tmp_path / "runs"]))
    nnunet = cells[(cells["method"] == "nnU-Net") & (cells["metric"] == "dice")].iloc[0]
    assert (nnunet["n_seeds"], nnunet["n"]) == (2, 4)
    assert nnunet["mean"] == pytest.approx(np.mean([0.45, 0.5]))
    closs = _cell(cells, "CLoss")
    assert closs["n_seeds"] == 3  # the fine-tuned runs are three seeds


def test_one_seed_gives_todays_cell(make_run: Callable[..., Path], tmp_path: Path) -> None:
    make_run("one", seed=None, cases=("a", "b"), values={"postprocessed": {"dice": [0.2, 0.4]}})
    cell = _cell(aggregate_cells(load_results([tmp_path / "runs"])), "CLoss")
    assert (cell["mean"], cell["n_seeds"]) == (pytest.approx(0.3), 1)
    assert np.isnan(cell["seed_std"]) and np.isnan(cell["fold_std"])


def test_paired_test_pairs_cases_averaged_over_seeds(seeded: Path) -> None:
    table = build_table(load_results([seeded]), 1, n_resamples=200, cases="all")
    row = next(r for r in table.rows if r.method == "CLoss")
    dice = row.cells[0]
    assert dice.n_seeds == 3 and "then over seeds" in table.caption
    comparison = dice.comparison
    # reference: per case, mean over the seeds each side has (case d lacks CLoss seed 2)
    diffs = []
    for fold, names in CASES.items():
        for i, _ in enumerate(names):
            closs = [CLOSS[(fold, s)][i] for s in range(3) if i < len(CLOSS[(fold, s)])]
            dce = [DCE[(fold, s)][i] for s in range(2)]
            diffs.append(np.mean(closs) - np.mean(dce))
    assert comparison.n == 6  # one pair per case, not per (case, seed)
    assert comparison.mean_difference == pytest.approx(100 * np.mean(diffs))
    assert comparison.p_value == pytest.approx(stats.wilcoxon(diffs).pvalue)
    frame = table_to_frame(table).set_index("method")
    assert frame.loc["CLoss", "dice_seed_std"] == pytest.approx(dice.seed_std)


def test_two_runs_of_one_seed_are_refused_naming_both(make_run: Callable[..., Path],
                                                       tmp_path: Path) -> None:
    make_run("exp1/closs", seed=4, values={"postprocessed": {"dice": [0.9, 0.8, 0.7]}})
    make_run("exp2/closs", seed=4, values={"postprocessed": {"dice": [0.3, 0.2, 0.1]}})
    with pytest.raises(ReadError, match=r"runs 'exp1/closs' and 'exp2/closs' both hold dice for "
                                        r"this configuration, fold and seed") as info:
        load_results([tmp_path / "runs"])
    assert "fold 0, seed 4" in str(info.value)
    make_run("exp3/closs", seed=5, values={"postprocessed": {"dice": [0.3, 0.2, 0.1]}})
    tidy = load_results([tmp_path / "runs" / "exp1", tmp_path / "runs" / "exp3"])
    assert _cell(aggregate_cells(tidy), "CLoss")["mean"] == pytest.approx(0.5)
