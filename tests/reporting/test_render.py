"""The benchmark report: tables from the CSVs, "not measured" for GPU, marker replacement."""

import pandas as pd
import pytest

from mtrec import reporting
from mtrec.reporting import THROUGHPUT_COLUMNS


def _row(model, device, batch, phase, rate, **extra):
    row = dict.fromkeys(THROUGHPUT_COLUMNS, "x")
    row.update(
        model=model,
        device=device,
        device_name=f"{device}-box",
        precision="fp32",
        batch_size=batch,
        phase=phase,
        samples_per_s=rate,
        ms_p50=batch / rate * 1e3,
        ms_p90=batch / rate * 1.1e3,
        peak_mem_mb=100.0,
        compiled=False,
        gflops_per_s=float("nan"),
        ceiling_fraction=float("nan"),
        cpu_cores=2,
    )
    row.update(extra)
    return row


def _frame(with_gpu):
    rows = [
        _row("ceiling/matmul", "cpu", 2048, "ceiling", 10.0, gflops_per_s=100.0),
        _row("ceiling/copy", "cpu", 2**28, "ceiling", 20.0),
        _row("mmoe", "cpu", 64, "train", 1000.0, gflops_per_s=20.0, ceiling_fraction=0.2),
        _row("mmoe", "cpu", 1024, "train", 4000.0, gflops_per_s=60.0, ceiling_fraction=0.6),
        _row("mmoe", "cpu", 1024, "inference", 9000.0),
    ]
    if with_gpu:
        rows += [
            _row(
                "ceiling/matmul", "cuda", 8192, "ceiling", 1.0, gflops_per_s=600e3, precision="bf16"
            ),
            _row("mmoe", "cuda", 4096, "train", 80000.0, precision="bf16"),
        ]
    return pd.DataFrame(rows)


def test_cpu_only_results_say_not_measured_for_gpu_and_not_available_for_missing_models():
    table = reporting.speedup_table(_frame(with_gpu=False), expected=("mmoe", "sasrec"))
    mmoe = table[(table.model == "mmoe") & (table.phase == "train")].iloc[0]
    assert mmoe["CPU samples/s"] == "4,000 (B=1024)"  # the best batch
    assert mmoe["GPU samples/s"] == "not measured" and mmoe["GPU / CPU"] == "not measured"
    sasrec = table[table.model == "sasrec"].iloc[0]
    assert sasrec["CPU samples/s"] == "not available"


def test_gpu_rows_give_the_speed_up_and_ceilings_give_bandwidth():
    frame = _frame(with_gpu=True)
    table = reporting.speedup_table(frame, expected=())
    train = table[(table.model == "mmoe") & (table.phase == "train")].iloc[0]
    assert train["GPU / CPU"] == "20.0×" and "bf16" in train["GPU samples/s"]
    ceilings = reporting.ceilings_table(frame).set_index("device")
    assert ceilings.loc["cpu", "matmul GFLOP/s"] == "100"
    assert ceilings.loc["cpu", "copy GB/s"] == f"{2 * 2**28 * 20 / 1e9:.3g}"
    flops = reporting.flops_table(frame)
    assert flops.set_index("phase").loc["train", "of matmul ceiling"] == "60%"


def test_render_writes_report_plots_and_only_the_marked_readme_tables(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    _frame(with_gpu=False).to_csv(results / "throughput.csv", index=False)
    goals = pd.DataFrame(
        [
            {
                "goal": "MMOE train / typical implementation",
                "kind": "multitask",
                "device": "cpu",
                "measured": 3.2,
                "target": ">= 2",
                "met": "yes",
                "detail": "d",
                "commit": "c",
                "date": "t",
            }
        ]
    )
    goals.to_csv(results / "goals.csv", index=False)
    readme = tmp_path / "README.md"
    readme.write_text(
        "intro\n<!-- quality:start -->\nold\n<!-- quality:end -->\nmiddle\n"
        "<!-- throughput:start -->\nold\n<!-- throughput:end -->\nend\n"
    )
    bench = tmp_path / "bench"
    written = reporting.write_report(results_dir=results, bench_dir=bench, readme=readme)
    assert (bench / "throughput.png").stat().st_size > 0 and (bench / "goals.png").exists()
    bench_doc = written["benchmarks/README.md"].read_text()
    assert "not measured" in bench_doc and "3.20" in bench_doc and "| yes |" in bench_doc
    text = readme.read_text()
    assert text.startswith("intro\n<!-- quality:start -->") and text.endswith("end\n")
    assert "\nmiddle\n" in text and "old" not in text
    assert "4,000 (B=1024)" in text and "No quality results" in text


def test_replace_between_needs_the_markers():
    assert reporting.replace_between("a <!-- t:start -->x<!-- t:end --> b", "t", "y") == (
        "a <!-- t:start -->\ny\n<!-- t:end --> b"
    )
    with pytest.raises(ValueError, match="markers"):
        reporting.replace_between("no markers", "t", "y")


def test_markdown_table_renders_mean_std():
    rows = reporting.quality_rows(dataset="d", model="m", metrics={"auc": [0.7, 0.8]})
    text = reporting.quality_markdown(rows)
    assert "0.7500 ± 0.0707" in text and text.startswith("| dataset |")


def test_overall_view_drops_per_scenario_rows():
    overall = reporting.quality_rows(dataset="d", model="m", metrics={"auc": [0.7, 0.8]})
    tops = reporting.quality_rows(dataset="d", model="m", metrics={"auc": [0.6]}, scenario="Tops")
    rows = pd.concat([overall, tops])
    assert "Tops" in reporting.quality_markdown(rows)
    assert "Tops" not in reporting.quality_markdown(rows, overall_only=True)
    assert "No quality results" in reporting.quality_markdown(tops, overall_only=True)


def test_the_readme_table_shows_only_the_models_passed_in():
    frame = _frame(with_gpu=False)
    frame.loc[len(frame)] = _row("mmoe-typical-loop", "cpu", 64, "train", 10.0)
    text = reporting.throughput_markdown(frame, pd.DataFrame(), models=("mmoe", "sasrec"))
    assert "| mmoe |" in text and "typical-loop" not in text
    assert "| sasrec |  | not available |" in text
    assert "typical-loop" in reporting.throughput_markdown(frame, pd.DataFrame())


def test_rows_from_several_cpus_say_which_machine_measured_which_model():
    frame = _frame(with_gpu=False)
    assert "several machines" not in reporting.throughput_markdown(frame, pd.DataFrame())
    frame["commit"] = "abc1234"
    single = reporting.throughput_markdown(frame, pd.DataFrame(), models=("mmoe", "sasrec"))
    assert "CPU rows measured on cpu-box, commit abc1234." in single  # which code ran
    frame.loc[len(frame)] = _row("sasrec", "cpu", 64, "train", 10.0, device_name="other CPU",
                                 commit="def5678")  # fmt: skip
    text = reporting.throughput_markdown(frame, pd.DataFrame(), models=("mmoe", "sasrec"))
    assert "several machines" in text and "\n- other CPU, commit def5678: sasrec" in text


def test_seed_bars_draw_mean_and_std_over_seeds_sorted():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = pd.concat([
        reporting.quality_rows(dataset="d", model="a", task="t", metrics={"hr@10": [0.1, 0.3]}),
        reporting.quality_rows(dataset="d", model="b", task="t", metrics={"hr@10": [0.1]}),
    ])  # fmt: skip
    fig, ax = plt.subplots()
    table = reporting.seed_bars(ax, rows, "hr@10", highlight=("b",))
    assert list(table.index) == ["b", "a"] and table.loc["a", "value"] == pytest.approx(0.2)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["b (1 seed)", "a (2 seeds)"]
    with pytest.raises(ValueError, match="no 'auc' rows"):
        reporting.seed_bars(ax, rows, "auc")
    with pytest.raises(ValueError, match="one dataset and task"):
        reporting.seed_bars(ax, pd.concat([rows, rows.assign(task="u")]), "hr@10")
    plt.close(fig)


def _goal(goal, kind, measured, target, met, detail):
    return {"goal": goal, "kind": kind, "device": "cpu", "measured": measured, "target": target,
            "met": met, "detail": detail, "commit": "abc1234", "date": "2026-12-07"}  # fmt: skip


def test_compile_rows_are_a_table_of_their_own_not_goals_met_or_missed():
    goals = pd.DataFrame([
        _goal("mmoe CPU train / FLOP bound", "ceiling", 0.46, ">= 0.5", "no", "batch 4096"),
        _goal("mmoe train: torch.compile / eager, batch 4096", "compile", 0.597, ">= 1", "no",
              "samples/s 102034 compiled vs 170896 eager, timed in alternation"),
        _goal("sasrec train: torch.compile / eager, batch 1024", "compile", 1.1, ">= 1", "yes",
              "samples/s 971 compiled vs 883 eager, timed in alternation"),
    ])  # fmt: skip
    targets, asked = reporting.split_goals(goals)
    assert list(targets.kind) == ["ceiling"] and list(asked.kind) == ["compile", "compile"]
    assert set(reporting.goals_table(goals).goal) == {"mmoe CPU train / FLOP bound"}
    table = reporting.compile_table(goals)
    assert table.to_dict("records")[0] == {
        "model": "mmoe", "batch": 4096, "device": "cpu", "eager samples/s": 170896,
        "compiled samples/s": 102034, "compile / eager": 0.597, "pays off": "no",
    }  # fmt: skip
    frame = _frame(with_gpu=False)
    text = reporting.throughput_markdown(frame, goals)
    assert "Goals: 0 met, 1 not met" in text
    assert (
        "torch.compile pays off in 1 of 2 train steps timed both ways: sasrec at batch 1024" in text
    )
    report = reporting.benchmark_markdown(frame, goals, [])
    assert "## torch.compile against eager" in report and "| sasrec | 1024 |" in report
    assert reporting.compile_table(goals.iloc[:1]).empty
