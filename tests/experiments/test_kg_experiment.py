"""The pieces of ``mtrec run kg`` that need no dataset (the run itself is the experiment, not a
test)."""

from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from mtrec.experiments import kg as experiment
from mtrec.experiments.kg import CKE_SOURCES, KGExperimentConfig, evaluate, top_lists


def test_top_lists_skip_seen_items_non_candidates_and_users_without_tests():
    scores = torch.tensor([[5.0, 4.0, 3.0, 2.0], [1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 1.0, 1.0]])
    train = torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    test = torch.tensor([[0, 1.0, 0, 0], [1.0, 0, 0, 0], [0, 0, 0, 0]])  # user 2: no test item
    assert top_lists(scores, train, test, k=2).tolist() == [[1, 2], [3, 2]]
    candidates = torch.tensor([True, True, False, False])
    assert top_lists(scores, train, test, k=1, candidates=candidates).tolist() == [[1], [1]]


def test_evaluate_reports_accuracy_coverage_and_diversity():
    scores = torch.tensor([[3.0, 2.0, 1.0], [3.0, 2.0, 1.0]])
    train = torch.zeros(2, 3)
    test = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]])
    data = SimpleNamespace(genres=torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
    out = evaluate(scores, train, test, data, k=2)
    assert out["recall@2"] == 1.0 and out["coverage@2"] == pytest.approx(2 / 3)
    assert out["ild@2"] == pytest.approx(1.0)  # items 0 and 1 share no genre


def test_config_names_every_model_and_has_a_tiny_variant():
    config = KGExperimentConfig()
    assert set(CKE_SOURCES) <= set(config.models) and len(config.seeds) >= 3
    assert KGExperimentConfig.tiny().seeds == (0,)


def _protocol_rows(data, vectors, config):
    """A stand-in for run_warm / run_cold: one row per model and seed, every metric."""
    return pd.DataFrame([{"model": m, "seed": s, "seconds": 0.1, "ndcg@10": 0.3, "recall@10": 0.2,
                          "coverage@10": 0.5, "ild@10": 0.7}
                         for s in config.seeds for m in ("cke-id", "cke-kg")])  # fmt: skip


def test_a_seeds_rows_are_both_tasks_without_diversity(monkeypatch):
    monkeypatch.setattr(experiment, "prepared", lambda config: (None, None))
    monkeypatch.setattr(experiment, "run_warm", _protocol_rows)
    monkeypatch.setattr(experiment, "run_cold", _protocol_rows)
    rows = experiment.seed_rows(2, KGExperimentConfig())
    assert set(rows.columns) == {"model", "task", "metric", "value"}
    assert set(rows.task) == {experiment.WARM_TASK, experiment.COLD_TASK}
    assert set(rows.metric) == {"ndcg@10", "recall@10", "coverage@10"}  # ild@10 is not recorded
    assert len(rows) == 2 * 2 * 3  # tasks × models × metrics


def test_quick_main_runs_seed_0_of_the_tiny_config_and_is_never_recorded(monkeypatch, capsys):
    configs, seed_rows = [], experiment.seed_rows

    def fake_rows(seed, config):
        configs.append(config)
        return seed_rows(seed, config)

    monkeypatch.setattr(experiment, "prepared", lambda config: (None, None))
    monkeypatch.setattr(experiment, "run_warm", _protocol_rows)
    monkeypatch.setattr(experiment, "run_cold", _protocol_rows)
    monkeypatch.setattr(experiment, "seed_rows", fake_rows)
    monkeypatch.delenv("MTREC_WRITE_RESULTS", raising=False)
    threads = torch.get_num_threads()
    try:
        table = experiment.main(["--quick"])
        assert configs == [KGExperimentConfig.tiny()] and set(table.seeds) == {1}
        assert "written to nowhere" in capsys.readouterr().out
        monkeypatch.setenv("MTREC_WRITE_RESULTS", "1")
        with pytest.raises(ValueError, match="smoke run.*unset it"):
            experiment.main(["--quick"])
    finally:
        torch.set_num_threads(threads)
    assert len(configs) == 1  # refused before anything ran
