"""The serving comparison (torch eager vs onnxruntime) and the text comparison's helpers: their
rows and goals, not their speed (speed lives in `mtrec bench`)."""

import pytest
import torch

from mtrec import bench
from mtrec.bench import compare, serve_speed, text_speed


def test_serve_and_text_are_bench_groups():
    assert {"serve", "text"} <= set(bench.GROUPS)
    assert compare.COMPARISONS["serve"] is serve_speed.compare_serving
    assert compare.COMPARISONS["text"] is text_speed.compare_text
    assert text_speed.TEXT_MAX_LENGTH == 256  # the model's own, as SentenceTransformer


def test_worst_cosine_of_identical_vectors_is_one():
    vectors = torch.nn.functional.normalize(torch.randn(5, 8), dim=-1)
    low, mean = text_speed._worst_cosine(vectors, vectors)
    assert low == pytest.approx(1.0, abs=1e-6) and mean == pytest.approx(1.0, abs=1e-6)


def test_text_speed_goals_count_the_median_of_their_passes():
    def timed(ms_ours, ms_theirs):  # one pass: per-step times of 64 sentences
        return {"ours": bench.Timing([ms_ours], 0.0, 64), "st": bench.Timing([ms_theirs], 0.0, 64)}

    passes = [timed(1000, 990), timed(1000, 1010), timed(1000, 1000)]  # ratios 0.99, 1.01, 1.0
    chosen, note = bench.median_ratio_pass(passes, "ours", "st", 1.0)
    assert chosen is passes[2]
    assert note == "the median of 3 passes (0.990, 1.010, 1.000; the target lies among them)"


def test_serving_comparison_rows_and_goal(cpu_context, monkeypatch):
    pytest.importorskip("onnxruntime", reason="the serve extra (pip install 'mtrec[serve]')")
    pytest.importorskip("onnxscript", reason="the serve extra (pip install 'mtrec[serve]')")
    monkeypatch.setattr(serve_speed, "SERVE_BATCHES", (1, 4))
    cpu_context.settings.quick = True
    rows, goals = serve_speed.compare_serving(cpu_context)
    names = {(r["model"], r["batch_size"]) for r in rows}
    for model in ("distilled-student", "distill-teacher"):
        for suffix in ("", "-onnxruntime"):
            assert {(model + suffix, 1), (model + suffix, 4)} <= names
    (goal,) = goals
    assert goal["kind"] == "serve" and goal["target"] == ">= 2"
    assert goal["met"] in ("yes", "no") and goal["measured"] > 0


def test_held_out_reviews_leave_out_the_timed_ones():
    from mtrec.bench.inputs import review_texts

    timed = review_texts(64)
    others = review_texts(text_speed.TEXT_HELD_OUT, exclude=timed, seed=1)
    assert len(others) == text_speed.TEXT_HELD_OUT
    assert not set(others) & set(timed) and all(text.strip() for text in others)
    assert review_texts(text_speed.TEXT_HELD_OUT, exclude=timed, seed=1) == others  # seeded
