"""mtrec.experiments.generative: tidy rows per part, the runner's command path, title metrics."""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from mtrec.experiments import generative as experiment
from mtrec.experiments import runner, titles
from mtrec.reporting.store import QUALITY_COLUMNS


def _wide(part: str, seed: int) -> pd.DataFrame:
    """A part's per-seed results as its run_* function returns them (one column per metric)."""
    metrics = experiment.PARTS[part][0]
    bump = 0.02 * seed
    rows = [{"model": f"{part}-a", "seed": seed, **{m: 0.05 + bump for m in metrics}},
            {"model": f"{part}-b", "seed": seed, **{m: 0.20 + bump for m in metrics}}]  # fmt: skip
    frame = pd.DataFrame(rows)
    if "cold_hr@10" in frame:
        frame.loc[0, "cold_hr@10"] = np.nan  # no cold user for model a: no row, not a NaN row
    return frame


def test_part_rows_are_tidy_under_each_parts_task_and_dataset():
    for part, (metrics, task, dataset) in experiment.PARTS.items():
        rows = runner.tidy(experiment.EXPERIMENT, experiment.part_rows(_wide(part, 0), part), 0)
        assert list(rows.columns) == [*runner.KEY, "value", "seed"]
        assert set(rows.task) == {task} and set(rows.dataset) == {dataset}
        assert set(rows.metric) == set(metrics)
    rows = experiment.part_rows(_wide("next", 0), "next")
    assert "cold_hr@10" not in set(rows[rows.model == "next-a"].metric)
    assert len(rows) == 2 * len(experiment.PARTS["next"][0]) - 1
    assert experiment.selected_parts(["all"]) == ["next", "rating", "titles", "lm"]
    assert experiment.selected_parts(["titles", "next"]) == ["next", "titles"]


def test_recorded_is_a_model_by_metric_view_of_the_runner_rows(tmp_path):
    tidy = [experiment.part_rows(_wide("next", s), "next") for s in (0, 1)]
    per_seed = pd.concat([runner.tidy(experiment.EXPERIMENT, t, s) for s, t in enumerate(tidy)])
    rows = runner.summarise(per_seed)[QUALITY_COLUMNS]
    live = rows.assign(model=rows.model + "_nb08")  # a notebook's one-seed run: left out
    path = tmp_path / "quality.csv"
    pd.concat([rows, live]).to_csv(path, index=False)
    table = experiment.recorded(experiment.NEXT_TASK, path)
    assert list(table.index) == ["next-a", "next-b"]
    assert table.loc["next-b", "hr@10"] == "0.2100 ± 0.0141"
    assert pd.isna(table.loc["next-a", "cold_hr@10"])  # no value, no row
    assert experiment.recorded("no-such-task", path).empty


def _fake_parts(monkeypatch):
    monkeypatch.setattr(experiment, "load_next_item_data", lambda: None)
    runs = {"run_next_item": "next", "run_rating": "rating", "run_titles": "titles",
            "run_code_lm": "lm"}  # fmt: skip
    for name, part in runs.items():
        monkeypatch.setattr(experiment, name, lambda data, seeds, p=part, **kw: _wide(p, seeds[0]))


def test_main_runs_every_part_through_the_runner_and_writes_nothing(monkeypatch, capsys):
    _fake_parts(monkeypatch)
    monkeypatch.delenv("MTREC_WRITE_RESULTS", raising=False)
    threads = torch.get_num_threads()
    try:
        table = experiment.main(["--seeds", "0", "1", "2"])
        assert torch.get_num_threads() == 1  # the recorded rows were measured on one thread
    finally:
        torch.set_num_threads(threads)
    assert "written to nowhere" in capsys.readouterr().out  # MTREC_WRITE_RESULTS unset
    for metrics, task, dataset in experiment.PARTS.values():
        rows = table[table.task == task]
        assert set(rows.dataset) == {dataset} and set(rows.metric) == set(metrics)
        assert set(rows.seeds) == {3}
    assert table[(table.model == "next-a") & (table.metric == "cold_hr@10")].empty
    one = experiment.main(["--part", "rating", "--seeds", "0", "1", "2"])
    assert set(one.task) == {experiment.RATING_TASK}


def test_options_are_checked():
    with pytest.raises(SystemExit):
        experiment.main(["--part", "nothing"])


@pytest.mark.slow
def test_rating_part_runs_for_real_on_one_seed(monkeypatch):
    monkeypatch.delenv("MTREC_WRITE_RESULTS", raising=False)
    threads = torch.get_num_threads()
    try:
        table = experiment.main(["--part", "rating", "--seeds", "0", "--epochs", "1"])
    finally:
        torch.set_num_threads(threads)
    assert set(table.model) == {"p5-semantic-rating", "training-mean", "user-mean"}
    assert set(table.metric) == {"rmse", *experiment.CONVERGENCE}
    assert (table[table.metric == "rmse"].value > 0).all()


def test_the_template_baseline_writes_from_class_and_rating():
    frame = pd.DataFrame({"class_name": ["Dresses", "Knits"], "rating": [5, 2]})
    assert titles.template_titles(frame) == ["love this dresses", "disappointed"]


def test_title_sources_and_writer_round_trip():
    frame = pd.DataFrame({"department": ["Dresses"], "class_name": ["Fine gauge"], "rating": [4],
                          "text": ["Soft and warm, runs a bit large"]})  # fmt: skip
    assert titles.title_sources(frame) == ["department dresses class fine gauge rating 4"]
    assert titles.title_sources(frame, True)[0].endswith("review soft and warm , runs a bit large")
    writer = titles.TitleWriter(["a b", "a b"], ["love it", "love it"], d_model=16, seed=0)
    writer.fit(["a b"] * 8, ["love it"] * 8, epochs=1)
    assert isinstance(writer.write(["a b", "a b"])[0], str)


def test_pick_decoding_takes_the_best_rouge_among_the_distinct_enough():
    references = ["love this dress", "runs small", "great top", "so soft"]
    written = {  # greedy copies the references but repeats itself; top-p0.8 varies
        "greedy": ["love this dress"] * 4,
        "greedy-rp1.5": ["love this dress", "love this dress", "great top", "great top"],
        "top-p0.5": ["love it", "runs big", "great", "soft"],
        "top-p0.8": ["love this dress", "runs small", "great", "so soft"],
        "top-p0.95": ["what", "is", "this", "?"],
    }

    def write(**options):
        name = next(n for n, o in titles.DECODINGS.items() if o == options)
        return written[name]

    best, table = titles.pick_decoding(write, references)
    assert best == "top-p0.8" and set(table.index) == set(titles.DECODINGS)
    assert table.loc["greedy", "distinct_titles"] == 0.25


def test_writer_stops_on_validation_loss_and_never_writes_an_empty_title():
    src, out = ["a b", "c d"] * 16, ["love it", "too big"] * 16
    writer = titles.TitleWriter(src, out, d_model=16, seed=0)
    writer.fit(src, out, epochs=3, valid=(src[:4], out[:4]))
    assert 1 <= len(writer.history.epochs) <= 3 and writer.history.best_epoch >= 0
    greedy = writer.write(["a b", "c d", "a b"])
    assert all(t.strip() for t in greedy) and greedy[0] == greedy[2]  # same input, same title
    sampled = writer.write(["a b"] * 8, top_p=0.95, seed=1)
    assert sampled == writer.write(["a b"] * 8, top_p=0.95, seed=1)  # seeded
    assert all(t.strip() for t in sampled)
    with pytest.raises(ValueError, match="top_p must be in"):
        writer.write(["a b"], top_p=0.0)
    with pytest.raises(ValueError, match="repetition_penalty must be >= 1"):
        writer.write(["a b"], repetition_penalty=0.5)


def test_writer_never_writes_unknown_words_even_when_it_learned_them():
    src = ["a b"] * 32
    out = [f"word{i} other{i}" for i in range(32)]  # every title word is seen once: <unk>
    writer = titles.TitleWriter(src, out, d_model=16, seed=0)
    assert writer.tokenizer(out[0])["input_ids"][:2] == [writer.tokenizer.unk_token_id] * 2
    writer.fit(src, out, epochs=3)
    for written in (writer.write(src[:4]), writer.write(src[:8], top_p=1.0, seed=0)):
        assert all(t.strip() for t in written)


def test_convergence_rows_say_whether_the_cap_ended_training():
    from mtrec.train import History

    history = History(epochs=[{}] * 4, best_epoch=1, best_score=0.1)
    assert experiment.convergence(history, 10) == {"epochs": 4.0, "best_epoch": 1.0,
                                                   "at_cap": 0.0}  # fmt: skip
    assert experiment.convergence(history, 4)["at_cap"] == 1.0


def test_title_retrieval_reads_32_tokens_by_design_and_does_not_warn(tmp_path, monkeypatch):
    monkeypatch.setenv("MTREC_DATA", str(tmp_path))  # an empty embedding cache: every text encoded
    words = " ".join(["wonderfully", "comfortable", "stretchy"] * 8)
    frame = pd.DataFrame({"department": ["Dresses", "Tops"], "class_name": ["Dresses", "Knits"],
                          "rating": [5, 2], "text": [words, "runs small"],
                          "target": ["love it", "too small"]})  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = titles.retrieve_titles(frame, frame, with_review=True)
    assert out == ["love it", "too small"]  # each input's nearest training input is itself
    assert not [w for w in caught if "max_length" in str(w.message)], caught
