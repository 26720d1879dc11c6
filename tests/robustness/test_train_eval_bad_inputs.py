"""Bad inputs at train, eval, distill, routing, weighting and transfer: clear errors, never silence.

Each case passes when the call returns a correct, finite result or raises ``ValueError`` /
``TypeError`` / ``KeyError`` (or mtrec's documented ``RuntimeError`` for "not fitted yet") whose
innermost traceback frame is inside the ``mtrec`` package, with a non-empty message. Property
cases (hypothesis) draw shapes, NaNs, empties and ids; explicit cases reproduce each report.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from mtrec.data import TensorBatcher
from mtrec.data.schema import DenseFeature
from mtrec.data.synthetic import random_batch
from mtrec.eval import metrics as m
from mtrec.eval.click import evaluate
from mtrec.eval.diversity import coverage_at_k, intra_list_diversity
from mtrec.eval.link_prediction import RandomScorer, evaluate_link_prediction
from mtrec.eval.next_item import evaluate_next_item
from mtrec.eval.topk import evaluate_topk, top_k_items
from mtrec.routing import LearnedTaskMapper, RuleTaskMapper, ScenarioClassifier
from mtrec.train import NonFiniteLossError, fit
from mtrec.train.distill import losses as dl
from mtrec.train.distill.distiller import DistillConfig, Distiller
from mtrec.train.transfer import (
    check_rows,
    nearest_scenario,
    scenario_similarity,
)
from mtrec.train.weighting import FixedWeights, GradNorm, UncertaintyWeighting
from tests.robustness.conftest import CLEAR_OR_UNFITTED, result_or_clear_error
from tests.robustness.conftest import REPLAYABLE as PROPERTY
from tests.robustness.conftest import assert_clear_error as any_clear_error

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("seeded")]
# a clear error here is a ValueError / TypeError / KeyError, or mtrec's "call fit first" RuntimeError
assert_clear_error = partial(any_clear_error, accept=CLEAR_OR_UNFITTED)


def _finite(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return bool(torch.isfinite(value.float()).all()) if value.numel() else True
    if isinstance(value, np.ndarray):
        return bool(np.isfinite(value.astype(float)).all()) if value.size else True
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, (float, int)):
        return math.isfinite(value)
    return True


def clear_or_finite(fn: Callable[[], Any], check: Callable[[Any], bool] | None = None) -> Any:
    """A battery case: a finite (and ``check``-correct) result, or a clear mtrec error.

    The one NaN allowed is a metric that is undefined for its rows (AUC of one class, nDCG of
    users without a relevant item), returned with an ``UndefinedMetricWarning``: never silent.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", m.UndefinedMetricWarning)
        result = result_or_clear_error(fn, accept=CLEAR_OR_UNFITTED)
    if isinstance(result, Exception):
        return result
    announced = any(issubclass(w.category, m.UndefinedMetricWarning) for w in caught)
    if announced and isinstance(result, float) and math.isnan(result):
        return result
    assert _finite(result), f"non-finite result without an error: {result!r}"
    if check is not None:
        assert check(result), f"wrong result: {result!r}"
    return result


# --------------------------------------------------------------------------------------------
# a tiny click model
# --------------------------------------------------------------------------------------------
class TwoTask(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 2)

    def loss(self, batch):
        logits = self.linear(batch["x"])
        per = nn.functional.binary_cross_entropy_with_logits(
            logits, batch["labels"], reduction="none"
        )
        return per.mean(dim=0)

    @torch.no_grad()
    def predict(self, batch):
        return torch.sigmoid(self.linear(batch["x"]))


def _data(n: int = 64, seed: int = 0) -> dict[str, torch.Tensor]:
    x = random_batch([DenseFeature("x", 4)], n, seed=seed)["x"]
    labels = torch.stack([(x[:, 0] > 0), (x[:, 1] + x[:, 2] > 0)], dim=1).float()
    return {"x": x, "labels": labels, "scenario_ids": (x[:, 3] > 0).long()}


# --------------------------------------------------------------------------------------------
# reproducers: fit (items 1, 2)
# --------------------------------------------------------------------------------------------
def test_nan_validation_score_stops_with_the_epoch_and_the_cause():
    exc = assert_clear_error(
        lambda: fit(
            TwoTask(),
            TensorBatcher(_data(), 32),
            valid_fn=lambda _: float("nan"),
            epochs=3,
            progress=False,
        ),
        match="epoch 0",
    )
    assert "one class" in str(exc) and "nan" in str(exc).lower()


def test_one_class_validation_auc_through_evaluate_is_refused_by_fit():
    valid = _data(32, seed=1)
    valid["labels"][:] = 1.0

    def score(model):
        table = evaluate(model, [valid], task_names=["a", "b"])
        return table.query("scenario == 'all' and metric == 'auc'").value.mean()

    with pytest.warns(m.UndefinedMetricWarning):
        assert_clear_error(
            lambda: fit(
                TwoTask(), TensorBatcher(_data(), 32), valid_fn=score, epochs=2, progress=False
            ),
            match="validation score",
        )


def test_nan_training_loss_names_epoch_batch_and_nan_inputs():
    data = _data()
    data["x"][40, 1] = float("nan")
    exc = assert_clear_error(
        lambda: fit(TwoTask(), TensorBatcher(data, 32), epochs=2, progress=False), match="epoch 0"
    )
    assert isinstance(exc, NonFiniteLossError) and isinstance(exc, FloatingPointError)
    assert "batch 1" in str(exc) and "['x']" in str(exc) and "lower lr" in str(exc)


def test_empty_batcher_does_not_report_loss_zero():
    empty = {k: v[:0] for k, v in _data().items()}
    assert_clear_error(
        lambda: fit(TwoTask(), TensorBatcher(empty, 32), epochs=2, progress=False),
        match="no batch",
    )


def test_exhausted_generator_is_named_one_shot():
    batches = (b for b in TensorBatcher(_data(), 32))
    exc = assert_clear_error(lambda: fit(TwoTask(), batches, epochs=3, progress=False))
    assert "one-shot iterator" in str(exc) and "epoch 1" in str(exc)
    assert "TensorBatcher" in str(exc)


def test_a_generator_for_one_epoch_still_trains():
    history = fit(TwoTask(), (b for b in TensorBatcher(_data(), 32)), epochs=1, progress=False)
    assert len(history.epochs) == 1 and history.epochs[0]["train_loss"] > 0


def test_fit_valid_runs_are_unchanged():
    """Same seed, same numbers: validation adds no RNG draw and no computation."""
    runs = [
        fit(
            TwoTask(),
            TensorBatcher(_data(), 32, shuffle=True),
            epochs=3,
            progress=False,
            valid_fn=lambda mod: float(mod.linear.weight.sum()),
        )
        for _ in range(2)
    ]
    losses = [[e["train_loss"] for e in h.epochs] for h in runs]
    assert losses[0] == losses[1] and all(math.isfinite(v) for v in losses[0])


# --------------------------------------------------------------------------------------------
# reproducers: metrics and evaluate (items 9, 14)
# --------------------------------------------------------------------------------------------
def test_auc_with_ratings_is_refused():
    assert_clear_error(lambda: m.auc([1, 2, 3, 4, 5], [0.1, 0.4, 0.2, 0.8, 0.9]), match="0 or 1")


def test_logloss_with_label_two_is_refused():
    assert_clear_error(lambda: m.logloss([0, 2], [0.3, 0.6]), match="0 or 1")


def test_single_class_auc_is_nan_with_a_warning_not_silent():
    with pytest.warns(m.UndefinedMetricWarning, match="undefined"):
        assert math.isnan(m.auc([1, 1, 1], [0.2, 0.5, 0.9]))


def test_nan_scores_are_refused_by_click_and_ranking_metrics():
    assert_clear_error(lambda: m.auc([0, 1, 1], [0.2, float("nan"), 0.9]), match="NaN")
    assert_clear_error(lambda: m.logloss([0, 1], [float("nan"), 0.9]), match="NaN")
    scores = np.array([[0.1, float("nan"), 0.3]])
    assert_clear_error(lambda: m.ndcg_at_k(scores, np.array([[0, 1, 0]]), 2), match="NaN")


def test_breakdown_names_unknown_scenario_ids():
    exc = assert_clear_error(
        lambda: m.breakdown(
            np.array([0, 1, -1, 0]),
            {"click": np.array([0, 1, 1, 0])},
            {"click": np.array([0.2, 0.7, 0.6, 0.1])},
            scenario_names=["a", "b"],
        )
    )
    assert "[-1]" in str(exc)


def test_evaluate_with_nan_inputs_points_at_them():
    data = _data(32)
    data["x"][3, 0] = float("nan")
    exc = assert_clear_error(lambda: evaluate(TwoTask(), [data], task_names=["a", "b"]))
    assert "['x']" in str(exc) and "NaN" in str(exc)


def test_evaluate_with_label_two_is_refused():
    data = _data(32)
    data["labels"][0, 0] = 2.0
    assert_clear_error(lambda: evaluate(TwoTask(), [data], task_names=["a", "b"]), match="0 or 1")


def test_top_k_items_refuses_k_beyond_the_unseen_items():
    scores = torch.rand(2, 5)
    seen = torch.zeros(2, 5)
    seen[1, :3] = 1
    assert top_k_items(scores, seen, k=2).shape == (2, 2)
    assert_clear_error(lambda: top_k_items(scores, seen, k=3), match="only 2 unseen")
    assert_clear_error(lambda: top_k_items(scores, seen, k=9), match="only 5 items")
    scores[1, 4] = float("-inf")  # an excluded item is not a candidate either
    assert_clear_error(lambda: top_k_items(scores, seen, k=2), match="only 1 unseen")


def test_evaluate_topk_refuses_nan_scores_instead_of_ranking_them_last():
    scores = torch.rand(3, 6)
    scores[0, 2] = float("nan")
    test = torch.zeros(3, 6)
    test[:, 1] = 1
    assert_clear_error(lambda: evaluate_topk(scores, torch.zeros(3, 6), test, k=2), match="NaN")


def test_target_rank_refuses_nan_scores():
    scores = torch.tensor([[0.1, float("nan"), 0.3]])
    assert_clear_error(lambda: m.target_rank(scores, torch.tensor([1])), match="NaN")


# --------------------------------------------------------------------------------------------
# reproducers: distill, routing, weighting, transfer
# --------------------------------------------------------------------------------------------
def test_distill_temperature_alpha_and_shapes():
    s, t = torch.randn(4, 2), torch.randn(4, 2)
    for temperature in (0.0, -1.0, float("nan")):
        assert_clear_error(lambda T=temperature: dl.response_distillation_loss(s, t, temperature=T))
        assert_clear_error(lambda T=temperature: DistillConfig(temperature=T))
    for alpha in (-0.1, 1.5, float("nan")):
        assert_clear_error(lambda a=alpha: dl.mix(s.sum(), t.sum(), alpha=a))
        assert_clear_error(lambda a=alpha: DistillConfig(alpha=a))
    assert_clear_error(lambda: dl.response_distillation_loss(s, torch.randn(4, 3)), match="shape")
    assert_clear_error(lambda: dl.listwise_kl_loss(torch.randn(2, 5), torch.randn(2, 4)))


def test_distiller_refuses_mismatched_student_and_teacher():
    class Out(nn.Module):
        def __init__(self, width):
            super().__init__()
            self.linear = nn.Linear(4, width)

        def forward(self, batch):
            return self.linear(batch["x"])

    with pytest.warns(UserWarning, match="training mode"):
        make = lambda: Distiller(Out(2), Out(3), example_batch=_data(8))  # noqa: E731
        assert_clear_error(make, match="differ")


def test_scenario_classifier_empty_one_class_and_empty_predict():
    assert_clear_error(lambda: ScenarioClassifier("svm").fit([], []), match="empty")
    texts = ["red shoes", "red boots", "blue shirt", "blue coat"] * 3
    assert_clear_error(
        lambda: ScenarioClassifier("svm").fit(texts, ["a"] * len(texts)), match="two scenarios"
    )
    clf = ScenarioClassifier("svm").fit(texts, ["shoes", "shoes", "tops", "tops"] * 3)
    assert clf.predict([]).shape == (0,) and clf.predict_proba([]).shape == (0, 2)
    assert_clear_error(lambda: ScenarioClassifier("tree").predict(["x"]), match="fit")


def test_weighting_refuses_nan_weights_and_fractional_tasks():
    assert_clear_error(lambda: FixedWeights([1.0, float("nan")]), match="finite")
    assert_clear_error(lambda: UncertaintyWeighting(2.5), match="int")
    assert_clear_error(lambda: FixedWeights([1.0, 1.0])(torch.ones(3)), match="(2,)")


def test_transfer_checks_scenario_and_strategy():
    rows = {"labels": torch.ones(3, 2), "scenario_ids": torch.tensor([2, 2, 1])}
    assert_clear_error(lambda: check_rows(rows, scenario=2, num_tasks=2, strategy="new"))
    assert_clear_error(lambda: check_rows(rows, scenario=1.5, num_tasks=2, strategy="new"))
    assert_clear_error(lambda: scenario_similarity(torch.ones(3), torch.ones(2, 4)))
    assert nearest_scenario(torch.tensor([1.0, 0.0]), torch.eye(2)) == 0


# --------------------------------------------------------------------------------------------
# property battery
# --------------------------------------------------------------------------------------------
floats = st.one_of(
    st.floats(-5, 5, allow_nan=False),
    st.sampled_from([float("nan"), float("inf"), float("-inf"), 0.0, 1.0]),
)
labels_st = st.one_of(st.sampled_from([0.0, 1.0]), st.sampled_from([2.0, -1.0, 0.5, float("nan")]))


@st.composite
def label_score_pairs(draw):
    n = draw(st.integers(0, 12))
    n_scores = draw(st.sampled_from([n, n, n, max(n - 1, 0), n + 1]))
    labels = draw(st.lists(labels_st, min_size=n, max_size=n))
    scores = draw(st.lists(floats, min_size=n_scores, max_size=n_scores))
    return np.array(labels, dtype=float), np.array(scores, dtype=float)


@pytest.mark.timeout(60)
@PROPERTY
@given(pair=label_score_pairs())
def test_property_auc_gauc_logloss_rmse(pair):
    y, s = pair
    clear_or_finite(lambda: m.auc(y, s), lambda v: 0.0 <= v <= 1.0)
    clear_or_finite(lambda: m.gauc(y, s, np.arange(len(y)) % 2), lambda v: 0.0 <= v <= 1.0)
    clear_or_finite(lambda: m.logloss(y, 1 / (1 + np.exp(-s))), lambda v: v >= 0)
    clear_or_finite(lambda: m.rmse(y, s), lambda v: v >= 0)


@st.composite
def ranking_inputs(draw):
    u, n = draw(st.integers(0, 4)), draw(st.integers(0, 6))
    shape_r = draw(st.sampled_from([(u, n), (u, n), (u, n), (u, n + 1), (n,)]))
    scores = np.array(draw(st.lists(floats, min_size=u * n, max_size=u * n))).reshape(u, n)
    size = int(np.prod(shape_r))
    rel = np.array(
        draw(
            st.lists(
                st.sampled_from([0.0, 1.0, 2.0, -1.0, float("nan")]), min_size=size, max_size=size
            )
        )
    ).reshape(shape_r)
    k = draw(st.sampled_from([1, 3, 10, 0, -2, 2.5]))
    return scores, rel, k


@pytest.mark.timeout(60)
@PROPERTY
@given(args=ranking_inputs())
def test_property_ranking_metrics(args):
    scores, rel, k = args
    for fn in (m.ndcg_at_k, m.hit_rate_at_k, m.precision_at_k, m.recall_at_k, m.map_at_k):
        clear_or_finite(lambda f=fn: f(scores, rel, k), lambda v: 0.0 <= v <= 1.0 or math.isnan(v))
    clear_or_finite(lambda: m.mrr(scores, rel), lambda v: 0.0 <= v <= 1.0 or math.isnan(v))


@st.composite
def rank_inputs(draw):
    u, n = draw(st.integers(0, 4)), draw(st.integers(1, 6))
    scores = torch.tensor(draw(st.lists(floats, min_size=u * n, max_size=u * n))).reshape(u, n)
    targets = draw(st.lists(st.sampled_from([0, 1, n - 1, n, -1, 1.5]), min_size=u, max_size=u))
    k = draw(st.sampled_from([1, 5, 0, 2.0]))
    return scores, torch.tensor(targets), k


@pytest.mark.timeout(60)
@PROPERTY
@given(args=rank_inputs())
def test_property_target_rank_and_hit_ndcg(args):
    scores, targets, k = args
    ranks = clear_or_finite(lambda: m.target_rank(scores, targets))
    if isinstance(ranks, np.ndarray):
        assert (ranks >= 0).all() and (ranks < scores.shape[1]).all()
        clear_or_finite(
            lambda: m.hit_ndcg_from_rank(ranks, k), lambda v: 0 <= min(v) <= max(v) <= 1
        )


@st.composite
def breakdown_inputs(draw):
    n = draw(st.integers(0, 10))
    sid = draw(st.lists(st.sampled_from([0, 1, 2, -1, 5]), min_size=n, max_size=n))
    y = draw(st.lists(st.sampled_from([0.0, 1.0, float("nan"), 3.0]), min_size=n, max_size=n))
    p = draw(st.lists(st.sampled_from([0.1, 0.9, 0.5, float("nan"), 1.5]), min_size=n, max_size=n))
    names = draw(st.sampled_from([None, ["a", "b", "c"], ["a"]]))
    return np.array(sid), np.array(y), np.array(p), names


@pytest.mark.timeout(60)
@PROPERTY
@given(args=breakdown_inputs())
def test_property_breakdown(args):
    sid, y, p, names = args

    def run():
        table = m.breakdown(sid, {"t": y}, {"t": p}, scenario_names=names)
        assert table.n.sum() > 0 or len(table) >= 0
        defined = table.dropna(subset=["value"])
        assert np.isfinite(defined.value).all()
        # a NaN value is only ever the documented undefined AUC (one class) or an empty group
        for row in table[table.value.isna()].itertuples():
            group = np.isfinite(y) if row.scenario == "all" else None
            assert row.metric == "auc" or row.n == 0, row
            del group
        return 0.0

    clear_or_finite(run)


@st.composite
def fit_inputs(draw):
    n = draw(st.sampled_from([0, 1, 5, 33]))
    data = _data(max(n, 1))
    data = {k: v[:n] for k, v in data.items()}
    if n and draw(st.booleans()):
        data["x"][draw(st.integers(0, n - 1)), 0] = draw(st.sampled_from([float("nan"), math.inf]))
    if n and draw(st.booleans()):
        data["labels"][0, 0] = draw(st.sampled_from([2.0, float("nan"), 1.0]))
    kind = draw(st.sampled_from(["batcher", "list", "generator", "dict"]))
    epochs = draw(st.sampled_from([1, 2, 0, 1.5]))
    score = draw(st.sampled_from([0.5, float("nan"), "text", None]))
    return data, kind, epochs, score


@pytest.mark.timeout(60)
@PROPERTY
@given(args=fit_inputs())
def test_property_fit(args):
    data, kind, epochs, score = args
    batches: Any = {
        "batcher": lambda: TensorBatcher(data, 16),
        "list": lambda: list(TensorBatcher(data, 16)),
        "generator": lambda: (b for b in TensorBatcher(data, 16)),
        "dict": lambda: data,
    }[kind]()
    valid_fn = None if score is None else (lambda _mod: score)

    def run():
        history = fit(TwoTask(), batches, epochs=epochs, valid_fn=valid_fn, progress=False)
        return {"loss": history.epochs[-1]["train_loss"]}

    out = clear_or_finite(run)
    if isinstance(out, dict):  # trained: every epoch saw batches and a finite loss
        assert out["loss"] > 0


@st.composite
def evaluate_inputs(draw):
    n = draw(st.sampled_from([0, 1, 6, 20]))
    data = _data(max(n, 1), seed=draw(st.integers(0, 3)))
    data = {k: v[:n] for k, v in data.items()}
    if n and draw(st.booleans()):
        data["x"][0, 1] = float("nan")
    if n and draw(st.booleans()):
        data["labels"][-1, 1] = draw(st.sampled_from([2.0, float("nan"), -1.0]))
    if n and draw(st.booleans()):
        data["scenario_ids"][0] = draw(st.sampled_from([-1, 7]))
    if draw(st.booleans()):
        data.pop(draw(st.sampled_from(["labels", "scenario_ids"])))
    tasks = draw(st.sampled_from([["a", "b"], ["a"], ["a", "b", "c"]]))
    return data, tasks


@pytest.mark.timeout(60)
@PROPERTY
@given(args=evaluate_inputs())
def test_property_evaluate(args):
    data, tasks = args
    batches = [data] if len(next(iter(data.values()))) else []

    def run():
        table = evaluate(TwoTask(), batches, task_names=tasks)
        assert set(table.task) == set(tasks)
        auc_rows = table[table.metric == "auc"].dropna(subset=["value"])
        assert ((auc_rows.value >= 0) & (auc_rows.value <= 1)).all()
        return 0.0

    clear_or_finite(run)


@st.composite
def topk_inputs(draw):
    u, n = draw(st.integers(0, 4)), draw(st.integers(0, 6))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    scores = torch.rand(u, n, generator=gen)
    if u * n and draw(st.booleans()):
        scores[0, 0] = draw(st.sampled_from([float("nan"), float("inf"), float("-inf")]))
    seen = (torch.rand(u, n, generator=gen) < draw(st.sampled_from([0.0, 0.5, 1.0]))).float()
    test = (torch.rand(u, n, generator=gen) < 0.5).float() * (1 - seen)
    k = draw(st.sampled_from([1, 3, 10, 0, 2.5]))
    candidates = draw(st.sampled_from([None, "bool", "long"]))
    return scores, seen, test, k, candidates


@pytest.mark.timeout(60)
@PROPERTY
@given(args=topk_inputs())
def test_property_topk(args):
    scores, seen, test, k, cand = args
    n = scores.shape[1]
    candidates = {None: None, "bool": torch.ones(n, dtype=torch.bool), "long": torch.arange(n)}[
        cand
    ]
    out = clear_or_finite(lambda: top_k_items(scores, seen, k))
    if isinstance(out, torch.Tensor):  # every listed item is unseen and distinct
        assert all(bool((seen[u, out[u]] == 0).all()) for u in range(len(out)))
        assert all(len(set(row.tolist())) == row.numel() for row in out)
    clear_or_finite(
        lambda: evaluate_topk(scores, seen, test, k=k, candidates=candidates),
        lambda r: all(0 <= v <= 1 for key, v in r.items() if key != "users"),
    )


@st.composite
def next_item_inputs(draw):
    u, n = draw(st.integers(0, 4)), draw(st.integers(2, 6))
    history = torch.randint(0, n + 1, (u, 3))
    target = torch.tensor(
        draw(st.lists(st.sampled_from([1, n, n + 1, 0, -1]), min_size=u, max_size=u)),
        dtype=torch.long,
    )
    seen = torch.zeros(u, n + 1, dtype=draw(st.sampled_from([torch.bool, torch.bool, torch.long])))
    nan = draw(st.booleans())

    def score_fn(h):
        s = torch.rand(len(h), n + 1)
        if nan and len(h):
            s[0, 1] = float("nan")
        return s

    k = draw(st.sampled_from([1, (1, 5), 0, (), 3.5]))
    return score_fn, history, target, seen, k


@pytest.mark.timeout(60)
@PROPERTY
@given(args=next_item_inputs())
def test_property_evaluate_next_item(args):
    score_fn, history, target, seen, k = args
    clear_or_finite(
        lambda: evaluate_next_item(score_fn, history, target, seen, k=k),
        lambda r: all(0 <= v <= 1 for v in r.values()),
    )


@pytest.mark.timeout(60)
@PROPERTY
@given(
    u=st.integers(0, 3),
    k=st.integers(0, 4),
    bad=st.sampled_from([None, -1, 99, 1.5]),
    num=st.sampled_from([0, 5, 10, 2.5]),
)
def test_property_diversity(u, k, bad, num):
    top = torch.randint(0, 5, (u, k))
    if bad is not None and u * k:
        top = top.double() if isinstance(bad, float) else top
        top[0, 0] = bad
    features = torch.rand(5, 3)
    clear_or_finite(lambda: coverage_at_k(top, num), lambda v: 0 <= v <= 1)
    clear_or_finite(lambda: intra_list_diversity(top, features), lambda v: 0 <= v <= 2)


@pytest.mark.timeout(60)
@PROPERTY
@given(
    m_rows=st.integers(0, 4),
    bad=st.sampled_from([None, -1, 50, "nan"]),
    ks=st.sampled_from([(1, 10), (0,), (2.5,)]),
)
def test_property_link_prediction(m_rows, bad, ks):
    test = torch.tensor([[1, 0, 2], [2, 1, 3], [3, 0, 4], [4, 1, 1]])[:m_rows]
    known = torch.tensor([[1, 0, 2], [2, 1, 3], [3, 0, 4], [4, 1, 1]])
    scorer: Any = RandomScorer(6)
    if bad == "nan":

        class NaNScorer(RandomScorer):
            def score_tails(self, heads, relations):
                return torch.full((len(heads), 6), float("nan"))

        scorer = NaNScorer(6)
    elif bad is not None and m_rows:
        test = test.clone()
        test[0, 2] = bad
    clear_or_finite(
        lambda: evaluate_link_prediction(scorer, test, known=known, ks=ks),
        lambda r: 0 < r["mrr"] <= 1,
    )


@st.composite
def distill_inputs(draw):
    b, t = draw(st.integers(0, 3)), draw(st.integers(1, 3))
    student = torch.randn(b, t)
    teacher_shape = draw(st.sampled_from([(b, t), (b, t), (b, t + 1), (t,)]))
    teacher = torch.randn(*teacher_shape)
    if b and draw(st.booleans()):
        teacher.view(-1)[0] = draw(st.sampled_from([float("nan"), float("inf"), float("-inf")]))
    temperature = draw(st.sampled_from([1.0, 2.0, 0.0, -1.0, float("nan"), "2"]))
    alpha = draw(st.sampled_from([0.0, 0.5, 1.0, -0.1, 1.5, float("nan")]))
    return student, teacher, temperature, alpha


@pytest.mark.timeout(60)
@PROPERTY
@given(args=distill_inputs())
def test_property_distill_losses(args):
    student, teacher, temperature, alpha = args
    clear_or_finite(
        lambda: dl.response_distillation_loss(student, teacher, temperature=temperature)
    )
    clear_or_finite(
        lambda: dl.response_distillation_loss(student, teacher, temperature=temperature, kind="kl")
    )
    clear_or_finite(lambda: dl.listwise_kl_loss(student, teacher, temperature=temperature))
    clear_or_finite(
        lambda: dl.ranking_aware_loss(student, teacher, top_k=1, temperature=temperature)
    )
    clear_or_finite(lambda: dl.feature_distillation_loss(student, teacher, kind="cosine"))
    clear_or_finite(lambda: dl.mix(torch.tensor(1.0), torch.tensor(2.0), alpha=alpha))
    clear_or_finite(lambda: DistillConfig(alpha=alpha, temperature=temperature) and 0.0)


@pytest.mark.timeout(60)
@PROPERTY
@given(
    temperature=st.sampled_from([2.0, 0.0, float("nan")]),
    width=st.sampled_from([2, 3]),
    rows=st.sampled_from([0, 1, 4]),
)
def test_property_distiller(temperature, width, rows):
    class Out(nn.Module):
        def __init__(self, w):
            super().__init__()
            self.linear = nn.Linear(4, w)

        def forward(self, batch):
            return self.linear(batch["x"])

    def run():
        teacher = Out(width).eval()
        d = Distiller(Out(2), teacher, DistillConfig(temperature=temperature))
        batch = {k: v[:rows] for k, v in _data(8).items()}
        return d.loss(batch)

    out = clear_or_finite(run)
    if isinstance(out, torch.Tensor):
        assert out.ndim == 0


texts_st = st.lists(
    st.sampled_from(["red shoes", "blue coat", "", "red boots", "blue shirt"]), max_size=8
)


@pytest.mark.timeout(60)
@PROPERTY
@given(
    kind=st.sampled_from(["tree", "svm", "neural"]),
    texts=texts_st,
    labels=st.lists(st.sampled_from(["a", "b"]), max_size=8),
    predict=st.sampled_from([[], ["red shoes"], "red shoes", np.zeros((2, 3))]),
)
def test_property_scenario_classifier_on_texts(kind, texts, labels, predict):
    clf = ScenarioClassifier(kind, epochs=1)
    fitted = clear_or_finite(lambda: clf.fit(texts, labels) and 0.0)
    if fitted == 0.0:
        out = clear_or_finite(lambda: clf.predict_proba(predict))
        if isinstance(out, np.ndarray):
            assert out.shape == (len(predict), len(clf.classes_))
            assert np.allclose(out.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.timeout(60)
@PROPERTY
@given(
    kind=st.sampled_from(["tree", "svm", "neural"]),
    n=st.integers(0, 8),
    width=st.integers(1, 3),
    nan=st.booleans(),
    predict_width=st.integers(0, 3),
)
def test_property_scenario_classifier_on_arrays(kind, n, width, nan, predict_width):
    x = np.random.default_rng(0).normal(size=(n, width))
    if nan and n:
        x[0, 0] = np.nan
    labels = [i % 2 for i in range(n)]
    clf = ScenarioClassifier(kind, epochs=1)
    fitted = clear_or_finite(lambda: clf.fit(x, labels) and 0.0)
    if fitted == 0.0:
        out = clear_or_finite(lambda: clf.predict(np.zeros((2, predict_width))))
        if isinstance(out, np.ndarray):
            assert out.shape == (2,) and set(out.tolist()) <= {0, 1}


@pytest.mark.timeout(60)
@PROPERTY
@given(
    ids=st.lists(st.sampled_from([0, 1, 2, -1, 3, 1.5]), max_size=5),
    table=st.sampled_from(
        [{"a": ["x"], "b": ["x", "y"]}, {"a": ["x"]}, {"a": ["z"], "b": []}, {"a": [], "b": []}]
    ),
    num_tasks=st.sampled_from([1, 2, 0, 2.5]),
)
def test_property_task_mappers(ids, table, num_tasks):
    def rule():
        mapper = RuleTaskMapper(table, scenarios=["a", "b"], tasks=["x", "y"])
        mask = mapper.mask(torch.tensor(ids))
        labels = mapper.apply(torch.ones(len(ids), 2), torch.tensor(ids))
        assert mask.shape == (len(ids), 2) and labels.shape == (len(ids), 2)
        return 0.0

    clear_or_finite(rule)

    def learned():
        mapper = LearnedTaskMapper([DenseFeature("x", 4)], num_tasks)
        return mapper.predict({"x": torch.randn(3, 4)})

    clear_or_finite(learned, lambda p: bool(((p >= 0) & (p <= 1)).all()))


@pytest.mark.timeout(60)
@PROPERTY
@given(
    weights=st.lists(st.sampled_from([1.0, 0.5, 0.0, -1.0, float("nan")]), max_size=3),
    losses=st.lists(st.sampled_from([0.5, 1.0, float("nan")]), min_size=0, max_size=3),
    num_tasks=st.sampled_from([1, 2, 0, 2.5]),
    alpha=st.sampled_from([1.5, -1.0, float("nan")]),
)
def test_property_weighting(weights, losses, num_tasks, alpha):
    vector = torch.tensor(losses)
    clear_or_finite(lambda: FixedWeights(weights)(vector))
    clear_or_finite(lambda: UncertaintyWeighting(num_tasks)(vector))
    shared = nn.Linear(2, 2)

    def gradnorm():
        weighting = GradNorm(num_tasks, shared.parameters(), alpha=alpha)
        out = shared(torch.ones(1, 2)).sum()
        per_task = [out * (i + 1) for i in range(len(losses))]
        return weighting(torch.stack(per_task) if per_task else torch.zeros(0))

    clear_or_finite(gradnorm)


@pytest.mark.timeout(60)
@PROPERTY
@given(
    d=st.integers(0, 3),
    s=st.integers(0, 3),
    nan=st.booleans(),
    scenario=st.sampled_from([0, 1, -1, 1.5]),
    rows=st.integers(0, 3),
)
def test_property_transfer_helpers(d, s, nan, scenario, rows):
    profile, profiles = torch.rand(d), torch.rand(s, max(d, 1))
    if nan and d:
        profile[0] = float("nan")
    clear_or_finite(lambda: nearest_scenario(profile, profiles), lambda i: 0 <= i < s)
    batch = {"labels": torch.ones(rows, 2), "scenario_ids": torch.full((rows,), 1)}
    clear_or_finite(
        lambda: check_rows(batch, scenario=scenario, num_tasks=2, strategy="new"),
        lambda n: n == rows,
    )


@pytest.mark.timeout(60)
@PROPERTY
@given(pair=label_score_pairs(), resamples=st.sampled_from([20, 1, 0, 2.5]))
def test_property_significance(pair, resamples):
    from mtrec.eval.significance import compare_to_baseline, paired_bootstrap, paired_t_test

    y, s = pair
    clear_or_finite(
        lambda: paired_bootstrap(y, s, s[::-1].copy(), num_resamples=resamples).p_value,
        lambda p: 0 <= p <= 1,
    )
    clear_or_finite(lambda: paired_t_test(s, s[::-1].copy()).p_value, lambda p: 0 <= p <= 1)
    clear_or_finite(lambda: len(compare_to_baseline(s, "a")))
