"""The one experiment runner: per-seed rows, resume, mean ± std rows, clear errors."""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import pytest

from mtrec.experiments import runner
from mtrec.experiments.runner import Experiment


def _seed_rows(seed: int, args: argparse.Namespace) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"model": ["a", "a", "b"], "metric": ["hr@10", "ndcg@10", "hr@10"],
                         "value": rng.random(3)})  # fmt: skip


def _experiment(run_seed=_seed_rows) -> Experiment:
    return Experiment("toy", run_seed, seeds=(0, 1, 2), dataset="ml-100k", task="next-item")


def test_rows_are_mean_and_sample_std_over_seeds():
    per_seed = runner.run_seeds(_experiment(), [0, 1, 2], argparse.Namespace())
    table = runner.summarise(per_seed)
    assert (
        len(table) == 3 and set(table.dataset) == {"ml-100k"} and set(table.task) == {"next-item"}
    )
    values = [_seed_rows(s, None).value[0] for s in (0, 1, 2)]
    row = table[(table.model == "a") & (table.metric == "hr@10")].iloc[0]
    assert row.value == pytest.approx(np.mean(values))
    assert row["std"] == pytest.approx(np.std(values, ddof=1))
    assert row.seeds == 3


def test_per_seed_files_resume(tmp_path):
    calls = []

    def counted(seed, args):
        calls.append(seed)
        return _seed_rows(seed, args)

    experiment = _experiment(counted)
    first = runner.run_seeds(experiment, [0, 1], argparse.Namespace(), per_seed_dir=tmp_path)
    again = runner.run_seeds(experiment, [0, 1, 2], argparse.Namespace(), per_seed_dir=tmp_path)
    assert calls == [0, 1, 2]  # seeds 0 and 1 were kept from their files
    pd.testing.assert_frame_equal(again[again.seed < 2], first)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"toy_seed{s}.csv" for s in (0, 1, 2)]
    merged = runner.merge(experiment, tmp_path)
    pd.testing.assert_frame_equal(runner.summarise(merged), runner.summarise(again))


def test_nan_metrics_are_refused_not_averaged():
    def nan_rows(seed, args):
        rows = _seed_rows(seed, args)
        rows.loc[1, "value"] = float("nan")
        return rows

    with pytest.raises(ValueError, match="NaN or infinite.*nothing is recorded"):
        runner.run_seeds(_experiment(nan_rows), [0], argparse.Namespace())


def test_a_seed_merged_twice_is_refused():
    per_seed = runner.run_seeds(_experiment(), [0, 1, 2], argparse.Namespace())
    with pytest.raises(ValueError, match="merged twice"):
        runner.summarise(pd.concat([per_seed, per_seed[per_seed.seed == 0]]))


def test_bad_declarations_and_paths_have_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="at least 3 seeds"):
        Experiment("toy", _seed_rows, seeds=(0,), dataset="d")
    with pytest.raises(ValueError, match=r"lack \['metric'\]"):
        runner.tidy(_experiment(), pd.DataFrame({"model": ["a"], "value": [1.0]}), 0)
    with pytest.raises(FileNotFoundError, match="no such folder"):
        runner.merge(_experiment(), tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="toy_seed<k>.csv"):
        runner.merge(_experiment(), tmp_path)
    with pytest.raises(SystemExit):
        runner.build_parser(_experiment()).parse_args(["--seeds", "-1"])


def test_main_prints_the_table_and_writes_nothing_by_default(capsys, monkeypatch):
    monkeypatch.delenv("MTREC_WRITE_RESULTS", raising=False)
    table = runner.main(_experiment(), ["--seeds", "0", "1", "2"])
    out = capsys.readouterr().out
    assert "[toy] 3 seeds in" in out and "written to nowhere" in out
    assert list(table.model.unique()) == ["a", "b"]


def test_mtrec_run_hands_the_options_to_the_experiment(capsys):
    from mtrec import cli

    with pytest.raises(SystemExit) as exit_:
        cli.main(["run", "sequential", "--help"])
    assert exit_.value.code == 0
    assert "--seeds" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["run", "no-such-experiment"])


def test_worker_processes_give_the_same_rows_as_one_process():
    experiment = _experiment()
    alone = runner.run_seeds(experiment, [0, 1, 2], argparse.Namespace())
    pooled = runner.run_seeds(experiment, [0, 1, 2], argparse.Namespace(), jobs=2)
    pd.testing.assert_frame_equal(pooled, alone)
    with pytest.raises(ValueError, match="--jobs"):
        runner.run_seeds(experiment, [0], argparse.Namespace(), jobs=0)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--merge", "/nonexistent/folder"], "no such folder"),
        (["--jobs", "0"], "--jobs: expected an integer >= 1"),
        (["--seeds", "-1"], "--seeds: expected an integer >= 0"),
        (["--seeds", "x"], "expected an integer, got 'x'"),
        (["--per-seed-dir", ""], "expected a path, got an empty string"),
    ],
)
def test_bad_options_stop_at_the_parser_with_a_message(argv, message, capsys):
    with pytest.raises(SystemExit) as stopped:
        runner.main(_experiment(), argv)
    assert stopped.value.code == 2  # not 0: nothing was run or recorded
    assert message in capsys.readouterr().err
