"""``mtrec bench``: a device's run over cases, and the command line.

Correctness only: no assertion here depends on how fast anything ran (speed lives in the tables).
"""

import argparse

import pytest
import torch

from mtrec import bench
from mtrec.cli import build_parser


def test_a_missing_model_is_reported_not_available_and_never_measured(monkeypatch, toy_case):
    def missing(batch_size):
        raise bench.Unavailable("mtrec.models.no_such_model is not available in this checkout")

    monkeypatch.setattr(
        bench.run,
        "model_cases",
        lambda: {"toy": [toy_case], "ghost": [bench.Case("ghost", missing, (1,), (1,))]},
    )
    rows, _goals, unavailable = bench.measure_device(
        torch.device("cpu"), ["toy", "ghost"], bench.Settings.from_quick(True)
    )
    models = {r["model"] for r in rows}
    assert {"ceiling/matmul", "ceiling/copy", "toy"} <= models and "ghost" not in models
    assert unavailable[0]["model"] == "ghost" and "not available" in unavailable[0]["reason"]
    matmul = next(r for r in rows if r["model"] == "ceiling/matmul")
    assert matmul["gflops_per_s"] > 0 and matmul["ceiling_fraction"] == pytest.approx(1.0)


def test_bench_command_parses_and_renders_the_report_only(tmp_path):
    args = build_parser().parse_args(
        [
            "bench",
            "--quick",
            "--models",
            "mmoe",
            "ple",
            "--batch-sizes",
            "8",
            "64",
            "--out",
            str(tmp_path / "results"),
        ]
    )
    assert args.quick and args.models == ["mmoe", "ple"] and args.batch_sizes == [8, 64]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["bench", "--models", "nonsense"])
    report = argparse.Namespace(**{**vars(args), "report_only": True})
    assert bench.run.main(report) == 0
    assert "not measured" in (tmp_path / "README.md").read_text()


def test_merge_upserts_another_runs_rows_and_says_what_it_needs(tmp_path):
    from mtrec.reporting import RESULTS_DIR, load_goals, load_throughput

    committed = load_throughput(RESULTS_DIR / "throughput.csv")
    target = tmp_path / "results"
    target.mkdir()
    committed.iloc[:3].to_csv(target / "throughput.csv", index=False)
    other = tmp_path / "gpu" / "results"
    other.mkdir(parents=True)
    gpu_rows = committed.iloc[:2].assign(device="cuda", device_name="a test GPU")
    gpu_rows.to_csv(other / "throughput.csv", index=False)
    load_goals(RESULTS_DIR / "goals.csv").iloc[:1].to_csv(other / "goals.csv", index=False)

    args = build_parser().parse_args(["bench", "--out", str(target), "--merge", str(other)])
    assert args.func(args) == 0
    merged = load_throughput(target / "throughput.csv")
    assert len(merged) == 5 and (merged.device == "cuda").sum() == 2
    assert len(load_goals(target / "goals.csv")) == 1

    empty = tmp_path / "empty"
    empty.mkdir()
    args = build_parser().parse_args(["bench", "--out", str(target), "--merge", str(empty)])
    with pytest.raises(SystemExit, match="found neither"):
        args.func(args)


def test_merge_with_relabel_replaces_the_machines_rows_under_its_old_label(tmp_path):
    from mtrec.reporting import RESULTS_DIR, load_throughput, machine_name

    committed = load_throughput(RESULTS_DIR / "throughput.csv").iloc[:3]
    target, other = tmp_path / "results", tmp_path / "quiet"
    target.mkdir(), other.mkdir()
    committed.to_csv(target / "throughput.csv", index=False)
    name = machine_name(committed.device_name.iloc[0])
    committed.iloc[:2].assign(device_name=f"{name} [quiet host]").to_csv(
        other / "throughput.csv", index=False
    )
    argv = ["bench", "--out", str(target), "--merge", str(other), "--relabel"]
    args = build_parser().parse_args(argv)
    assert args.func(args) == 0
    merged = load_throughput(target / "throughput.csv")
    assert len(merged) == 3 and (merged.device_name == f"{name} [quiet host]").sum() == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["bench", "--out", ""], "--out: expected a path, got an empty string"),
        (["bench", "--threads", "0"], "--threads: expected an integer >= 1"),
        (["bench", "--batch-sizes", "8", "-2"], "--batch-sizes: expected an integer >= 1"),
        (["bench", "--merge", ""], "--merge: expected a path"),
    ],
)
def test_numeric_and_path_flags_are_checked_at_the_parser(argv, message, capsys):
    from mtrec.cli import main

    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["export", "--atol", "nan"], "--atol: expected a finite number"),
        (["export", "--atol", "-1"], "--atol: expected a number in [0.0, inf]"),
        (["export", "--check-batch", "0"], "--check-batch: expected an integer >= 1"),
        (["export", "--out", " "], "--out: expected a path"),
    ],
)
def test_export_flags_are_checked_at_the_parser(argv, message, capsys):
    from mtrec.cli import main

    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err
