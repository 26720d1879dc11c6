"""mtrec.experiments.generative: tables from per-seed rows and from the CSV; title metrics."""

import numpy as np
import pandas as pd
import pytest
import torch

from mtrec.experiments import generative as experiment
from mtrec.experiments import titles
from mtrec.reporting.store import QUALITY_COLUMNS


def _per_seed() -> pd.DataFrame:
    rows = []
    for seed, bump in ((0, 0.0), (1, 0.02)):
        rows += [{"model": "p5-random", "seed": seed, "hr@10": 0.05 + bump, "cold_hr@10": np.nan},
                 {"model": "p5-sequential", "seed": seed, "hr@10": 0.20 + bump, "cold_hr@10": 0.5}]  # fmt: skip
    return pd.DataFrame(rows)


def test_mean_std_and_record_round_trip(tmp_path, monkeypatch):
    table = experiment.mean_std(_per_seed(), ["hr@10"])
    assert table.loc["p5-sequential", "hr@10"] == "0.21 ± 0.0141"
    written = []
    monkeypatch.setattr(experiment, "record_quality", lambda rows: written.append(rows) or True)
    assert experiment.record(_per_seed(), experiment.NEXT_TASK, ["hr@10", "cold_hr@10"], "ml-100k")
    rows = pd.concat(written)
    assert set(rows.model) == {"p5-random", "p5-sequential"}
    assert "cold_hr@10" not in set(rows[rows.model == "p5-random"].metric)  # all NaN: no row
    path = tmp_path / "quality.csv"
    rows[QUALITY_COLUMNS].to_csv(path, index=False)
    back = experiment.recorded(experiment.NEXT_TASK, path)
    assert back.loc["p5-random", "hr@10"] == "0.0600 ± 0.0141"
    assert experiment.recorded("no-such-task", path).empty
    live = rows[QUALITY_COLUMNS].assign(model=rows.model + "_nb08")  # a notebook's one-seed run
    pd.concat([rows[QUALITY_COLUMNS], live]).to_csv(path, index=False)
    assert set(experiment.recorded(experiment.NEXT_TASK, path).index) == {
        "p5-random",
        "p5-sequential",
    }


def test_title_metrics_by_code():
    assert titles.normalise("Love it!!  So CUTE") == "love it ! ! so cute"
    assert (
        titles.class_consistency(["love this dress", "great jeans"], ["Dresses", "Dresses"]) == 0.5
    )
    assert titles.class_mentions(["love these skirts", "nice"], ["Skirts", "Skirts"]) == 0.5
    judge = titles.SentimentJudge(
        ["love it", "love this", "awful", "returned it"] * 5, [5, 5, 1, 2] * 5
    )
    assert titles.sentiment_agreement(judge, ["love", "awful"], [5, 1]) == 1.0
    assert titles.sentiment_agreement(judge, ["love", "awful"], [1, 5]) == 0.0
    frame = pd.DataFrame({"class_name": ["Dresses", "Knits"], "rating": [5, 2]})
    assert titles.template_titles(frame) == ["love this dresses", "disappointed"]
    scores = titles.text_metrics(["i love this dress so much"], ["i love this dress so much"])
    assert scores["rouge_l"] == pytest.approx(1.0) and scores["bleu"] > 0
    with pytest.raises(ValueError, match="empty"):
        titles.class_consistency([], [])


def test_title_sources_and_writer_round_trip():
    frame = pd.DataFrame({"department": ["Dresses"], "class_name": ["Fine gauge"], "rating": [4],
                          "text": ["Soft and warm, runs a bit large"]})  # fmt: skip
    assert titles.title_sources(frame) == ["department dresses class fine gauge rating 4"]
    assert titles.title_sources(frame, True)[0].endswith("review soft and warm , runs a bit large")
    writer = titles.TitleWriter(["a b", "a b"], ["love it", "love it"], d_model=16, seed=0)
    writer.fit(["a b"] * 8, ["love it"] * 8, epochs=1)
    assert isinstance(writer.write(["a b", "a b"])[0], str)


def test_main_records_each_part_under_its_task(monkeypatch, capsys):
    """The one-process command path (what `make tour` runs) records rows, like --merge."""
    written = []
    monkeypatch.setattr(experiment, "record_quality", lambda rows: written.append(rows) or True)
    monkeypatch.setattr(experiment, "load_next_item_data", lambda: None)
    metrics = experiment.RECORDED["next"][0]
    per_seed = _per_seed().assign(**{m: 0.1 for m in metrics if m not in ("hr@10", "cold_hr@10")})
    monkeypatch.setattr(experiment, "run_next_item", lambda data, seeds, **kw: per_seed)
    threads = torch.get_num_threads()
    try:
        experiment.main(["--part", "next", "--seeds", "0", "1"])
    finally:
        torch.set_num_threads(threads)
    rows = pd.concat(written)
    assert set(rows.task) == {experiment.NEXT_TASK} and set(rows.dataset) == {"ml-100k"}
    assert set(rows.metric) == set(metrics)
    assert "rows written to" in capsys.readouterr().out
