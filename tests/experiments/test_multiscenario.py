"""The benchmark's pieces on a tiny synthetic dataset, and its runner entry points (the real
run is not a test)."""

import logging

import pandas as pd
import pytest

from mtrec.data.synthetic import random_batch, tiny_features
from mtrec.experiments import multiscenario, runner
from mtrec.experiments.multiscenario import MODELS, Prepared, measure_cost, run_benchmark


def _tiny() -> Prepared:
    def part(seed: int) -> dict:
        batch = random_batch(tiny_features(), 96, num_tasks=1, num_scenarios=2, seed=seed)
        batch["labels"] = ((batch["user"] + batch["scenario_ids"]) % 2).float().unsqueeze(1)
        return batch

    return Prepared("tiny", tiny_features(), ("y",), ("a", "b"), part(0), part(1), part(2),
                    batch_size=32, lr=1e-2, max_epochs=1, patience=1)  # fmt: skip


@pytest.fixture
def tiny_dataset(monkeypatch, tmp_path):
    """``--datasets tiny`` runs :func:`_tiny`; the per-seed and cost CSVs go to ``tmp_path``;
    quality rows are caught instead of written (the calls are returned)."""
    monkeypatch.setitem(multiscenario.DATASETS, "tiny", _tiny)
    monkeypatch.setattr(multiscenario, "SEEDS_CSV", tmp_path / "seeds.csv")
    monkeypatch.setattr(multiscenario, "COST_CSV", tmp_path / "cost.csv")
    recorded = []
    monkeypatch.setattr(runner, "record_quality",
                        lambda rows: multiscenario.writing_enabled() and not recorded.append(rows))  # fmt: skip
    yield recorded
    multiscenario._prepared.cache_clear()


@pytest.mark.usefixtures("one_thread")
def test_every_model_runs_and_reports_per_scenario_rows():
    per_seed = run_benchmark(_tiny(), list(MODELS), seeds=[0, 1])
    assert set(per_seed.model) == set(MODELS) and set(per_seed.seed) == {0, 1}
    assert set(per_seed.scenario) == {"all", "a", "b"} and set(per_seed.metric) == {
        "auc",
        "logloss",
    }
    assert per_seed.value.notna().all()
    quality = runner.summarise(per_seed.drop(columns="split"))
    assert (quality.seeds == 2).all() and quality["std"].notna().all()
    assert len(quality) == len(per_seed) // 2  # one row per metric over the two seeds
    with pytest.raises(ValueError, match="unknown models"):
        run_benchmark(_tiny(), ["nope"], seeds=[0])


@pytest.mark.usefixtures("one_thread")
def test_a_seed_runs_every_dataset_and_model_as_tidy_rows(tiny_dataset):
    args = runner.build_parser(multiscenario.EXPERIMENT).parse_args(
        ["--datasets", "tiny", "--models", "one_for_all", "star"]
    )
    assert args.jobs == 2 and args.max_epochs is None  # the command's defaults
    rows = multiscenario.run_seed(0, args)
    assert list(rows.columns) == ["dataset", "model", "scenario", "task", "metric", "value"]
    assert set(rows.model) == {"one_for_all", "star"} and set(rows.dataset) == {"tiny"}
    assert len(rows) == 2 * 3 * 2  # models × scenarios (a, b, all) × metrics
    tidy = runner.tidy(multiscenario.EXPERIMENT, rows, seed=0)
    assert not tidy.duplicated(runner.KEY).any()


def test_nan_metrics_are_left_out_with_a_log_line(caplog):
    rows = pd.DataFrame({"dataset": "d", "model": "m", "scenario": ["a", "b"], "task": "y",
                         "metric": "auc", "value": [0.7, float("nan")]})  # fmt: skip
    with caplog.at_level(logging.INFO, logger=multiscenario.__name__):
        kept = multiscenario.finite_rows(rows, seed=3)
    assert kept.scenario.tolist() == ["a"]
    assert "seed 3: 1 of 2 metric values are NaN" in caplog.text and "one class" in caplog.text


@pytest.mark.usefixtures("one_thread")
def test_main_runs_end_to_end_and_writes_nothing_by_default(tiny_dataset, monkeypatch, capsys):
    monkeypatch.delenv("MTREC_WRITE_RESULTS", raising=False)
    options = ["--datasets", "tiny", "--models", "one_for_all", "--seeds", "0", "1", "--jobs", "1"]
    table = multiscenario.main(options)
    out = capsys.readouterr().out
    assert "written to nowhere" in out and "train_s_per_epoch" in out  # cost printed
    assert (table.seeds == 2).all() and len(table) == 3 * 2
    assert tiny_dataset == [] and not multiscenario.SEEDS_CSV.exists()
    assert not multiscenario.COST_CSV.exists()


@pytest.mark.usefixtures("one_thread")
def test_main_writes_the_seed_and_cost_tables_only_when_asked(tiny_dataset, monkeypatch):
    monkeypatch.setenv("MTREC_WRITE_RESULTS", "1")
    options = ["--datasets", "tiny", "--models", "one_for_all", "--seeds", "0", "1", "--jobs", "1"]
    multiscenario.main([*options, "--no-write"])
    assert tiny_dataset == [] and not multiscenario.SEEDS_CSV.exists()
    assert multiscenario.writing_enabled()  # --no-write holds for its run only
    multiscenario.main([*options, "--max-epochs", "1"])
    assert len(tiny_dataset) == 1 and len(tiny_dataset[0]) == 3 * 2
    seeds = pd.read_csv(multiscenario.SEEDS_CSV)
    assert len(seeds) == 2 * 3 * 2 and set(seeds.split) == {"test"}
    assert list(seeds.columns) == multiscenario.SEED_COLUMNS
    assert pd.read_csv(multiscenario.COST_CSV).model.tolist() == ["one_for_all"]
    multiscenario.COST_CSV.unlink()
    cost = multiscenario.main(["--datasets", "tiny", "--models", "star", "--cost-only"])
    assert cost.model.tolist() == ["star"] and len(tiny_dataset) == 1  # no quality run
    assert pd.read_csv(multiscenario.COST_CSV).model.tolist() == ["star"]


@pytest.mark.usefixtures("one_thread")
def test_cost_counts_every_per_scenario_model():
    cost = measure_cost(_tiny(), ["one_for_all", "per_scenario", "hamur"], repeats=1)
    per = cost.set_index("model")
    assert per.loc["per_scenario", "parameters"] == 2 * per.loc["one_for_all", "parameters"]
    assert (cost.train_s_per_epoch > 0).all() and (cost.infer_us_per_row > 0).all()


@pytest.mark.usefixtures("one_thread")
def test_train_and_score_returns_run_models_metrics_and_the_trained_model():
    from mtrec.experiments.multiscenario import run_model, train_and_score

    data = _tiny()
    metrics, model = train_and_score("star", data, seed=0)
    assert model is not None and not model.training  # trained, left in eval mode by predict
    assert metrics.equals(run_model("star", data, seed=0))  # same seed, same numbers
    per_metrics, per_model = train_and_score("per_scenario", data, seed=0)
    assert per_model is None and set(per_metrics.scenario) == {"all", "a", "b"}


def test_clothing_scaling_constants_are_named():
    from mtrec.data.tasks import clothing

    assert (clothing.AGE_CENTRE, clothing.AGE_SCALE, clothing.TITLE_DIM, clothing.TITLE_SCALE) == (
        43,
        12,
        16,
        4,
    )


def test_prepared_from_task_keeps_the_task_and_adds_the_protocol():
    from mtrec.data.tasks import ClickTask

    tiny = _tiny()
    task = ClickTask("tiny", tiny.features, tiny.tasks, tiny.scenarios, tiny.train, tiny.valid,
                     tiny.test, "synthetic")  # fmt: skip
    again = Prepared.from_task(task, batch_size=32, lr=1e-2, max_epochs=1, patience=1)
    assert again.train is task.train and again.scenarios == ("a", "b") and again.batch_size == 32


def test_an_epoch_cap_override_keeps_the_rest_of_the_protocol(tiny_dataset):
    capped = multiscenario.prepared("tiny", max_epochs=3)
    assert capped.max_epochs == 3 and capped.train is multiscenario.prepared("tiny").train
    with pytest.raises(ValueError, match="--max-epochs"):
        multiscenario.prepared("tiny", max_epochs=0)


@pytest.mark.usefixtures("one_thread")
def test_the_validation_score_is_the_mean_of_the_per_task_aucs():
    from mtrec.eval.click import evaluate
    from mtrec.eval.metrics import auc
    from mtrec.experiments.multiscenario import mean_auc, train

    data = _tiny()
    model = train(lambda: MODELS["star"](data.features, 2, 1), data, data.train, data.valid, 0)
    table = evaluate(model, [data.test], task_names=["y"], metrics={"auc": auc})
    expected = float(table[table.scenario == "all"].value.mean())
    assert mean_auc(model, data.test) == pytest.approx(expected)
    assert mean_auc(model, data.test, batch_size=7) == pytest.approx(expected)
