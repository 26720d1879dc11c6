"""``mtrec run text_tuning`` on a tiny stand-in (40 users, 30 films, a 2-layer BERT): row and cost
shapes, the read-back table and the verdicts. The real run is the experiment, not a test."""

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertModel

from mtrec.data.interactions import IdIndex
from mtrec.experiments import text_tuning as experiment
from mtrec.extractors.text import default_model_path
from mtrec.train.text_tuning import TextTuningConfig, encode_items, tokenize

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny_data() -> experiment.TextData:
    rng = np.random.default_rng(0)
    users, items = np.arange(1, 41), np.arange(1, 31)
    pairs = [(u, i) for u in users for i in rng.choice(items, 12, replace=False)]
    ratings = pd.DataFrame(pairs, columns=["user_id", "item_id"]).assign(rating=4.0)
    index = IdIndex.from_frames(ratings, items=pd.Series(items))
    texts = [f"film {i} | {'Drama' if i % 2 else 'Comedy'}" for i in index.item_ids]
    tokenizer = AutoTokenizer.from_pretrained(default_model_path())
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32,
                                 num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                                 max_position_embeddings=64)).eval()  # fmt: skip
    frozen = encode_items(model, tokenize(tokenizer, texts))
    return experiment.TextData(ratings, index, texts, frozen, model, tokenizer)


def test_a_seed_gives_every_model_task_and_metric_and_its_cost(tiny_data):
    rows, costs = experiment.seed_rows(1, tiny_data, TextTuningConfig.tiny())
    assert set(rows.columns) == {"model", "task", "metric", "value"}
    assert len(rows) == len(experiment.MODELS) * 2 * len(experiment.METRICS)
    assert set(rows.task) == {experiment.WARM_TASK, experiment.COLD_TASK}
    assert rows.value.between(0, 1).all()
    cost = experiment.cost_table(costs).set_index(["model", "task"])
    share = cost["trainable_share"].xs(experiment.WARM_TASK, level="task")
    assert share["content_minilm_frozen"] == 0 < share["content_minilm_lora"] < 0.5
    assert share["content_minilm_full"] == 1.0 and cost["seeds"].eq(1).all()


def test_main_runs_three_seeds_and_writes_nothing_without_the_flag(tiny_data, monkeypatch, capsys,
                                                                   tmp_path):  # fmt: skip
    monkeypatch.setattr(experiment, "_data", lambda: tiny_data)
    monkeypatch.setattr(experiment, "_COSTS", [])
    monkeypatch.setattr(experiment, "COST_CSV", tmp_path / "cost.csv")
    monkeypatch.delenv("MTREC_WRITE_RESULTS", raising=False)
    table = experiment.main(["--steps", "2"])
    assert len(table) == 24 and set(table.seeds) == {3}
    assert len(experiment._COSTS) == 3 * 6 and not (tmp_path / "cost.csv").exists()
    assert "written to nowhere" in capsys.readouterr().out
    monkeypatch.setenv("MTREC_WRITE_RESULTS", "1")
    experiment.finish(table, None)  # the cost table alone (quality.csv is not touched here)
    cost = pd.read_csv(tmp_path / "cost.csv")
    assert list(cost.columns) == experiment.COST_COLUMNS and len(cost) == 6
    assert cost.seeds.eq(3).all() and cost.threads.eq(1).all()


def test_recorded_and_verdicts_read_the_two_tables(tmp_path):
    quality = pd.DataFrame([
        {"dataset": "ml-100k", "model": m, "scenario": "all", "task": t, "metric": "ndcg@10",
         "value": v, "std": 0.01, "seeds": 3, "split": "test", "commit": "abc"}
        for t, base in ((experiment.WARM_TASK, 0.14), (experiment.COLD_TASK, 0.3))
        for m, v in zip(experiment.MODELS, (base, base + 0.005, base + 0.05))
    ])  # fmt: skip
    quality.to_csv(tmp_path / "quality.csv", index=False)
    tasks = [experiment.WARM_TASK] * 3 + [experiment.COLD_TASK] * 3
    cost = pd.DataFrame({"model": list(experiment.MODELS) * 2, "task": tasks,
                         "trainable_share": 0.5, "train_s": 1.0, "kept_step": 20})  # fmt: skip
    cost.to_csv(tmp_path / "cost.csv", index=False)
    table = experiment.recorded(tmp_path / "quality.csv", tmp_path / "cost.csv")
    assert table.model.tolist() == list(experiment.MODELS) * 2
    assert table.task.tolist()[::3] == [experiment.WARM_TASK, experiment.COLD_TASK]
    verdict = experiment.verdicts(table).set_index(["task", "model"])["verdict"]
    assert verdict[experiment.WARM_TASK, "content_minilm_lora"] == "no difference"  # 0.005 < std
    assert verdict[experiment.COLD_TASK, "content_minilm_full"] == "better"
