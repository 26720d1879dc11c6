"""The benchmark command's pieces on a tiny synthetic dataset (the real run is not a test)."""

import pytest

from mtrec.data.synthetic import random_batch, tiny_features
from mtrec.experiments.multiscenario import (
    MODELS,
    Prepared,
    measure_cost,
    quality_frame,
    run_benchmark,
)


def _tiny() -> Prepared:
    def part(seed: int) -> dict:
        batch = random_batch(tiny_features(), 96, num_tasks=1, num_scenarios=2, seed=seed)
        batch["labels"] = ((batch["user"] + batch["scenario_ids"]) % 2).float().unsqueeze(1)
        return batch

    return Prepared("tiny", tiny_features(), ("y",), ("a", "b"), part(0), part(1), part(2),
                    batch_size=32, lr=1e-2, max_epochs=1, patience=1)  # fmt: skip


@pytest.mark.usefixtures("one_thread")
def test_every_model_runs_and_reports_per_scenario_rows():
    per_seed = run_benchmark(_tiny(), list(MODELS), seeds=[0, 1])
    assert set(per_seed.model) == set(MODELS) and set(per_seed.seed) == {0, 1}
    assert set(per_seed.scenario) == {"all", "a", "b"} and set(per_seed.metric) == {
        "auc",
        "logloss",
    }
    assert per_seed.value.notna().all()
    quality = quality_frame(per_seed)
    assert (quality.seeds == 2).all() and quality["std"].notna().all()
    assert len(quality) == len(per_seed) // 2  # one row per metric over the two seeds
    with pytest.raises(ValueError, match="unknown models"):
        run_benchmark(_tiny(), ["nope"], seeds=[0])


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
