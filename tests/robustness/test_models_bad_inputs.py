"""Bad inputs to every model family in mtrec.models (click, scenario, sequential, top-K, KG).

A battery case passes when the call returns a correct, finite, correctly-shaped result or raises
``ValueError`` / ``TypeError`` / ``KeyError`` whose innermost traceback frame is inside the
``mtrec`` package, with a non-empty message (:func:`assert_clear_error`). Inputs are drawn by
hypothesis over batch sizes (0 included), ids (negative, past the vocabulary, fractional
floats), NaN / inf features, bad labels, bad configs and list lengths ``k`` past what is left.
The explicit tests below the battery replay each reported reproducer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from functools import partial
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mtrec.models as M
from mtrec.data import TensorBatcher
from mtrec.data.schema import DenseFeature, SparseFeature
from mtrec.data.synthetic import random_batch, tiny_features
from mtrec.models.ranking import top_k_unseen
from mtrec.train import fit
from tests.robustness.conftest import CLEAR
from tests.robustness.conftest import assert_clear_error as any_clear_error

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("one_thread")]
# a clear error here is a ValueError / TypeError / KeyError (anything else propagates and fails)
assert_clear_error = partial(any_clear_error, accept=CLEAR)
PROPERTY = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
SEEDS = st.integers(0, 2**16)


def no_nan(x: Any) -> bool:
    """No NaN in a tensor or a tuple of tensors (``-inf`` scores mark padding and are allowed)."""
    items = x if isinstance(x, (tuple, list)) else (x,)
    tensors = [t for t in items if isinstance(t, torch.Tensor) and t.is_floating_point()]
    return all(not bool(torch.isnan(t).any()) for t in tensors)


def ok(fn: Callable[[], Any], check: Callable[[Any], bool] | None = None) -> Any:
    """The call must succeed with a NaN-free (and ``check``-correct) result."""
    result = fn()
    assert no_nan(result), f"NaN in the result: {result!r}"
    if check is not None:
        assert check(result), f"wrong result: {result!r}"
    return result


def expect(good: bool, fn: Callable[[], Any], check: Callable[[Any], bool] | None = None) -> Any:
    """A battery case: a correct result when the input is ``good``, else a clear error."""
    return ok(fn, check) if good else assert_clear_error(fn)


# --- click models (multi-task, multi-scenario, student) ------------------------------------

CLICK = {  # name: (config, T, reads scenario_ids)
    "MMoE": (lambda: M.MMoEConfig.tiny(), 2, False),
    "PLE": (lambda: M.PLEConfig.tiny(), 2, False),
    "ESMM": (lambda: M.ESMMConfig.tiny(), 2, False),
    "SharedBottom": (lambda: M.SharedBottomConfig.tiny(), 2, False),
    "SharedBottomScenario": (
        lambda: M.SharedBottomConfig.tiny(num_scenarios=3, scenario_towers=True),
        2,
        True,
    ),
    "STAR": (lambda: M.STARConfig.tiny(), 1, True),
    "ScenarioMoE": (lambda: M.ScenarioMoEConfig.tiny(), 1, True),
    "PEPNet": (lambda: M.PEPNetConfig.tiny(num_tasks=2), 2, True),
    "M2M": (lambda: M.M2MConfig.tiny(num_tasks=2), 2, True),
    "AdaSparse": (lambda: M.AdaSparseConfig.tiny(), 1, True),
    "SARNet": (lambda: M.SARNetConfig.tiny(num_tasks=2), 2, True),
    "HAMUR": (lambda: M.HAMURConfig.tiny(num_tasks=2), 2, True),
    "StudentMLP": (lambda: M.StudentConfig.tiny(), 2, False),
}
FEATURE_FAULTS = ["id-high", "id-negative", "id-fraction", "dense-nan", "dense-inf", "mismatch"]
SCENARIO_FAULTS = ["scenario-high", "scenario-negative", "scenario-fraction", "scenario-missing"]
LABEL_FAULTS = ["labels-2", "labels-minus", "labels-shape", "labels-missing"]


def build_click(name: str) -> tuple[torch.nn.Module, int, bool]:
    config_fn, t, scenarios = CLICK[name]
    config = config_fn()
    cls = "SharedBottom" if name.startswith("SharedBottom") else name
    model_cls = getattr(M, cls if cls != "StudentMLP" else "StudentMLP")
    torch.manual_seed(0)
    return model_cls(config), t, scenarios


def click_batch(model, t: int, b: int, fault: str, seed: int) -> tuple[dict, bool, bool]:
    """A batch with ``fault`` injected; (batch, forward must work, loss must work)."""
    features = model.config.features
    batch = random_batch(features, b, num_tasks=t, num_scenarios=3, seed=seed)
    row = seed % b if b else 0
    sparse = [f for f in features if isinstance(f, SparseFeature)]
    dense = [f for f in features if isinstance(f, DenseFeature)]
    hit = False  # the fault really changed a value
    if b and fault in ("id-high", "id-negative", "id-fraction"):
        f = sparse[seed % len(sparse)]
        if fault == "id-fraction":
            batch[f.name] = batch[f.name].float()
        batch[f.name][row] = {"id-high": f.vocab_size, "id-negative": -1, "id-fraction": 1.5}[fault]
        hit = True
    elif b and fault in ("dense-nan", "dense-inf") and dense:
        batch[dense[0].name][row, 0] = float("nan") if fault == "dense-nan" else float("inf")
        hit = True
    elif fault == "mismatch":
        batch[sparse[0].name] = torch.ones(b + 1, dtype=torch.long)
        hit = True
    elif b and fault in ("scenario-high", "scenario-negative", "scenario-fraction"):
        if fault == "scenario-fraction":
            batch["scenario_ids"] = batch["scenario_ids"].float()
        batch["scenario_ids"][row] = {"scenario-high": 3, "scenario-negative": -1,
                                      "scenario-fraction": 0.5}[fault]  # fmt: skip
        hit = True
    elif fault == "scenario-missing":
        del batch["scenario_ids"]
        hit = True
    elif b and fault in ("labels-2", "labels-minus"):
        batch["labels"][row, 0] = 2.0 if fault == "labels-2" else -1.0
        hit = True
    elif fault == "labels-shape":
        batch["labels"] = torch.zeros(b, t + 1)
        hit = True
    elif fault == "labels-missing":
        del batch["labels"]
        hit = True
    scenarios = CLICK_SCENARIOS[type(model).__name__](model)
    breaks_forward = hit and (fault in FEATURE_FAULTS or (fault in SCENARIO_FAULTS and scenarios))
    forward_ok = not breaks_forward
    loss_ok = forward_ok and b > 0 and not (hit and fault in LABEL_FAULTS)
    return batch, forward_ok, loss_ok


CLICK_SCENARIOS = {
    "SharedBottom": lambda m: m.config.num_scenarios > 0,
    "StudentMLP": lambda m: False,
    "MMoE": lambda m: False,
    "PLE": lambda m: False,
    "ESMM": lambda m: False,
}
for _name in ("STAR", "ScenarioMoE", "PEPNet", "M2M", "AdaSparse", "SARNet", "HAMUR"):
    CLICK_SCENARIOS[_name] = lambda m: True


@pytest.mark.parametrize("name", sorted(CLICK))
@PROPERTY
@given(
    b=st.integers(0, 4),
    fault=st.sampled_from(["none", "none", *FEATURE_FAULTS, *SCENARIO_FAULTS, *LABEL_FAULTS]),
    training=st.booleans(),
    seed=SEEDS,
)
def test_click_model_battery(name, b, fault, training, seed):
    model, t, _ = build_click(name)
    model.train(training)
    batch, forward_ok, loss_ok = click_batch(model, t, b, fault, seed)
    shape = lambda out: out.shape == (b, t)  # noqa: E731
    expect(forward_ok, lambda: model(batch), shape)
    expect(forward_ok, lambda: model.predict(batch), shape)
    expect(loss_ok, lambda: model.loss(batch), lambda losses: losses.shape == (t,))


CONFIGS = {
    "MMoEConfig": lambda **kw: M.MMoEConfig.tiny(**kw),
    "PLEConfig": lambda **kw: M.PLEConfig.tiny(**kw),
    "ESMMConfig": lambda **kw: M.ESMMConfig.tiny(**kw),
    "SharedBottomConfig": lambda **kw: M.SharedBottomConfig.tiny(**kw),
    "STARConfig": lambda **kw: M.STARConfig.tiny(**kw),
    "ScenarioMoEConfig": lambda **kw: M.ScenarioMoEConfig.tiny(**kw),
    "PEPNetConfig": lambda **kw: M.PEPNetConfig.tiny(**kw),
    "M2MConfig": lambda **kw: M.M2MConfig.tiny(**kw),
    "AdaSparseConfig": lambda **kw: M.AdaSparseConfig.tiny(**kw),
    "SARNetConfig": lambda **kw: M.SARNetConfig.tiny(**kw),
    "HAMURConfig": lambda **kw: M.HAMURConfig.tiny(**kw),
    "StudentConfig": lambda **kw: M.StudentConfig(**{**vars(M.StudentConfig.tiny()), **kw}),
    "SASRecConfig": lambda **kw: M.SASRecConfig.tiny(**kw),
    "NextItemsConfig": lambda **kw: M.NextItemsConfig.tiny(**kw),
    "BPRConfig": lambda **kw: M.BPRConfig(**{**vars(M.BPRConfig.tiny()), **kw}),
    "CKEConfig": lambda **kw: M.CKEConfig(**{**vars(M.CKEConfig.tiny()), **kw}),
    "TransEConfig": lambda **kw: M.TransEConfig(**{**vars(M.TransEConfig.tiny()), **kw}),
    "DistMultConfig": lambda **kw: M.DistMultConfig(**{**vars(M.DistMultConfig.tiny()), **kw}),
    "EASEConfig": lambda **kw: M.EASEConfig(**kw),
    "KNNConfig": lambda **kw: M.KNNConfig(**kw),
}
BAD = {
    int: [-1, 2.5, "3", True, None],
    float: [float("nan"), "0.1", None],
    tuple: [(-1,), (2.5,), (0,), "8", 8],
}


def _numeric_fields(config_name: str) -> list[tuple[str, type]]:
    config = CONFIGS[config_name]()
    out = []
    for f in fields(config):
        value = getattr(config, f.name)
        if isinstance(value, bool) or f.name in ("features", "task_names", "side_dims"):
            continue
        if isinstance(value, int):
            out.append((f.name, int))
        elif isinstance(value, float):
            out.append((f.name, float))
        elif isinstance(value, tuple):
            out.append((f.name, tuple))
    return out


@pytest.mark.parametrize("name", sorted(CONFIGS))
@PROPERTY
@given(data=st.data())
def test_config_battery(name, data):
    """Every numeric field of every config refuses a wrong value in __post_init__."""
    field, kind = data.draw(st.sampled_from(_numeric_fields(name)))
    bad = data.draw(st.sampled_from(BAD[kind]))
    assert_clear_error(lambda: CONFIGS[name](**{field: bad}), match=field)


@PROPERTY
@given(
    name=st.sampled_from(
        ["MMoEConfig", "SharedBottomConfig", "StudentConfig", "SASRecConfig", "NextItemsConfig"]
    ),
    dropout=st.sampled_from([-0.1, 1.0, 1.5, float("nan"), float("inf")]),
)
def test_dropout_out_of_range_is_refused(name, dropout):
    assert_clear_error(lambda: CONFIGS[name](dropout=dropout), match="dropout")


# --- sequential models ----------------------------------------------------------------------

N, LMAX = 30, 8  # items and history length of SASRecConfig.tiny()


def histories(b: int, length: int, low: int, high: int, seed: int) -> torch.Tensor:
    """(b, length) random ids in [low, high), left-padded with 0 at random."""
    g = torch.Generator().manual_seed(seed)
    h = torch.randint(low, high, (b, length), generator=g)
    cut = torch.randint(0, length + 1, (b, 1), generator=g) if length else torch.zeros(b, 1)
    return h.masked_fill(torch.arange(length)[None, :] < cut, 0)


def unseen_left(h: torch.Tensor, n: int, exclude_seen: bool) -> int:
    """The fewest recommendable items over the rows of ``h`` (items 1..n); no row: no limit."""
    if not len(h):
        return 10**9
    if not exclude_seen:
        return n
    return min(n - len(set(row.tolist()) - {0}) for row in h)


def valid_top_k(top: torch.Tensor, h: torch.Tensor, k: int, exclude_seen: bool) -> bool:
    """(B, k), no padding, distinct per row, and no seen item when ``exclude_seen``."""
    if top.shape != (len(h), k) or bool((top == 0).any()):
        return False
    for row, items in zip(h.tolist(), top.tolist()):
        if len(set(items)) != k or (exclude_seen and set(items) & (set(row) - {0})):
            return False
    return True


@PROPERTY
@given(
    b=st.integers(0, 3),
    length=st.integers(0, LMAX + 1),
    low=st.sampled_from([1, 1, 1, -1]),
    high=st.sampled_from([N + 1, N + 1, N + 1, N + 3]),
    k=st.sampled_from([1, 5, 21, 22, 25, 31, 40, 0, -1, 2.5]),
    exclude_seen=st.booleans(),
    seed=SEEDS,
)
def test_sasrec_battery(b, length, low, high, k, exclude_seen, seed):
    torch.manual_seed(0)
    model = M.SASRec(M.SASRecConfig.tiny())
    h = histories(b, length, low, high, seed)
    ids_ok = h.numel() == 0 or (int(h.min()) >= 0 and int(h.max()) <= N)
    forward_ok = ids_ok and length <= LMAX
    expect(forward_ok, lambda: model(h), lambda out: out.shape == (b, length, 16))
    scores_ok = forward_ok and length > 0
    expect(scores_ok, lambda: model.scores(h), lambda s: s.shape == (b, N + 1))
    k_ok = isinstance(k, int) and k >= 1 and k <= unseen_left(h, N, exclude_seen)
    expect(
        scores_ok and k_ok,
        lambda: model.recommend(h, k, exclude_seen=exclude_seen),
        lambda top: valid_top_k(top, h, k, exclude_seen),
    )
    targets = histories(b, length, 0, N + 1, seed + 1)
    loss_ok = forward_ok and bool((targets > 0).any())
    expect(loss_ok, lambda: model.loss({"item_ids": h, "targets": targets}))


@PROPERTY
@given(
    b=st.integers(0, 3),
    length=st.integers(1, 6),
    k=st.sampled_from([1, 3, 6, 13, 15, 30, 0]),
    beam=st.sampled_from([1, 1, 2, 0]),
    exclude_seen=st.booleans(),
    high=st.sampled_from([21, 21, 22]),
    seed=SEEDS,
)
def test_next_items_battery(b, length, k, beam, exclude_seen, high, seed):
    torch.manual_seed(0)
    model = M.NextItems(M.NextItemsConfig.tiny())  # 20 items, history_len 6, k 2
    h = histories(b, length, 1, high, seed)
    ids_ok = h.numel() == 0 or int(h.max()) <= 20
    longest = model.net.config.max_len
    k_ok = 1 <= k <= min(longest, unseen_left(h, 20, exclude_seen))
    expect(
        ids_ok and k_ok and beam >= 1,
        lambda: model.generate(h, k=k, beam_size=beam, exclude_seen=exclude_seen),
        lambda top: valid_top_k(top, h, k, exclude_seen),
    )
    nxt = histories(b, 2, 0, 21, seed + 1)
    loss_ok = ids_ok and bool((nxt > 0).any())
    expect(loss_ok, lambda: model.loss({"history": h, "next_items": nxt}))


@PROPERTY
@given(
    b=st.integers(0, 3),
    k=st.sampled_from([1, 5, 10, 11, 12, 0]),
    fraction=st.booleans(),
    exclude_seen=st.booleans(),
    seed=SEEDS,
)
def test_popularity_battery(b, k, fraction, exclude_seen, seed):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 11, (50,), generator=g)
    train = ids.float() + (0.3 if fraction else 0.0)
    if fraction:
        assert_clear_error(lambda: M.Popularity(10).fit(train))
        return
    pop = M.Popularity(10).fit(train)
    h = histories(b, 4, 1, 11, seed)
    k_ok = 1 <= k <= unseen_left(h, 10, exclude_seen)
    expect(
        k_ok,
        lambda: pop.recommend(h, k, exclude_seen=exclude_seen),
        lambda top: valid_top_k(top, h, k, exclude_seen),
    )


@PROPERTY
@given(
    b=st.integers(0, 3),
    length=st.integers(0, 6),
    high=st.sampled_from([31, 31, 33]),
    seed=SEEDS,
)
def test_cooccurrence_battery(b, length, high, seed):
    rng = np.random.default_rng(seed)
    model = M.CoOccurrence(N).fit([rng.integers(1, N + 1, 8) for _ in range(4)])
    h = histories(b, length, 0, high, seed)
    ids_ok = h.numel() == 0 or int(h.max()) <= N
    expect(ids_ok, lambda: model.scores(h), lambda s: s.shape == (b, N + 1))


# --- top-K (CF) and knowledge-graph models --------------------------------------------------


@pytest.mark.parametrize("name", ["EASE", "ItemKNN", "UserKNN", "Content", "Popularity"])
@PROPERTY
@given(
    users=st.integers(0, 4),
    items=st.integers(0, 5),
    poison=st.sampled_from(["none", "none", "nan", "inf", "1d"]),
    seed=SEEDS,
)
def test_cf_battery(name, users, items, poison, seed):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(users, items, generator=g) < 0.5).float()
    hit = poison == "1d" or (x.numel() > 0 and poison != "none")
    if poison in ("nan", "inf") and x.numel():
        x[seed % users, seed % items] = float("nan") if poison == "nan" else float("inf")
    if poison == "1d":
        x = x.flatten()
    good = not hit and users > 0 and items > 0
    if name == "Content":
        model = M.ContentRecommender(torch.randn(max(items, 1), 3, generator=g))
        good = good and items >= 1
    else:
        model = {
            "EASE": lambda: M.EASE(M.EASEConfig.tiny()),
            "ItemKNN": lambda: M.ItemKNN(M.KNNConfig.tiny()),
            "UserKNN": lambda: M.UserKNN(M.KNNConfig.tiny()),
            "Popularity": lambda: M.Popularity(),
        }[name]()
    if name == "Popularity":
        good = not hit and x.ndim == 2  # counting an empty matrix is fine
    shape = (users, items)
    expect(good, lambda: model.fit(x).scores(x), lambda s: s.shape == shape)


@PROPERTY
@given(
    b=st.integers(0, 4),
    user_high=st.sampled_from([6, 6, 7]),
    item_low=st.sampled_from([0, 0, -1]),
    name=st.sampled_from(["BPRMF", "CKE"]),
    seed=SEEDS,
)
def test_bpr_family_battery(b, user_high, item_low, name, seed):
    g = torch.Generator().manual_seed(seed)
    users = torch.randint(0, user_high, (b,), generator=g)
    pos = torch.randint(item_low, 8, (b,), generator=g)
    neg = torch.randint(0, 8, (b,), generator=g)
    torch.manual_seed(0)
    if name == "CKE":
        model = M.CKE(M.CKEConfig.tiny(), {"kg": torch.randn(8, 5, generator=g)})
    else:
        model = M.BPRMF(M.BPRConfig.tiny())
    ids_ok = b == 0 or (int(users.max()) < 6 and int(pos.min()) >= 0)
    expect(ids_ok, lambda: model(users, pos), lambda s: s.shape == (b,))
    batch = {"user_ids": users, "pos_item_ids": pos, "neg_item_ids": neg}
    expect(ids_ok and b > 0, lambda: model.loss(batch), lambda loss: loss.ndim == 0)
    assert ok(lambda: model.scores()).shape == (6, 8)


@PROPERTY
@given(
    b=st.integers(0, 4),
    entity_high=st.sampled_from([12, 12, 13]),
    relation_low=st.sampled_from([0, 0, -1]),
    name=st.sampled_from(["TransE", "DistMult"]),
    seed=SEEDS,
)
def test_kg_battery(b, entity_high, relation_low, name, seed):
    g = torch.Generator().manual_seed(seed)
    heads = torch.randint(0, entity_high, (b,), generator=g)
    relations = torch.randint(relation_low, 3, (b,), generator=g)
    tails = torch.randint(0, 12, (b,), generator=g)
    torch.manual_seed(0)
    model = getattr(M, name)(getattr(M, name + "Config").tiny())
    ids_ok = b == 0 or (int(heads.max()) < 12 and int(relations.min()) >= 0)
    expect(ids_ok, lambda: model.score(heads, relations, tails), lambda s: s.shape == (b,))
    expect(ids_ok, lambda: model.score_tails(heads, relations), lambda s: s.shape == (b, 12))
    relations_ok = b == 0 or int(relations.min()) >= 0
    expect(relations_ok, lambda: model.score_heads(relations, tails), lambda s: s.shape == (b, 12))
    batch = {"heads": heads, "relations": relations, "tails": tails}
    expect(ids_ok and b > 0, lambda: model.loss(batch), lambda loss: loss.ndim == 0)


@PROPERTY
@given(
    users=st.integers(0, 3),
    items=st.integers(0, 4),
    fault=st.sampled_from(["none", "none", "nan", "shape", "missing", "weight-nan", "weight-neg"]),
    seed=SEEDS,
)
def test_weighted_hybrid_battery(users, items, fault, seed):
    g = torch.Generator().manual_seed(seed)
    components = {"a": torch.randn(users, items, generator=g), "b": torch.rand(users, items)}
    weights = {"a": 0.5, "b": 0.5}
    if fault == "nan" and users and items:
        components["a"][0, 0] = float("nan")
    elif fault == "shape":
        components["b"] = torch.rand(users, items + 1)
    elif fault == "missing":
        del components["b"]
    elif fault == "weight-nan":
        weights["a"] = float("nan")
    elif fault == "weight-neg":
        weights["a"] = -0.1
    good = fault == "none" or (fault == "nan" and not (users and items))
    # a user's z-scores need two items (one item has no spread: NaN std is clamped, not NaN)
    good = good and items >= 2
    if fault in ("weight-nan", "weight-neg"):
        assert_clear_error(lambda: M.WeightedHybrid(weights))
        return
    hybrid = M.WeightedHybrid(weights)
    expect(good, lambda: hybrid.scores(components), lambda s: s.shape == (users, items))


@PROPERTY
@given(
    users=st.integers(0, 3),
    items=st.integers(0, 4),
    poison=st.sampled_from(["none", "none", "nan"]),
    warm_only=st.booleans(),
    seed=SEEDS,
)
def test_bpr_samplers_battery(users, items, poison, warm_only, seed):
    x = (torch.rand(users, items, generator=torch.Generator().manual_seed(seed)) < 0.6).float()
    if poison == "nan" and x.numel():
        x[0, 0] = float("nan")
    sampler = M.WarmItemSampler if warm_only else M.BPRSampler
    good = poison == "none" and bool((x > 0).any())
    if good:
        batches = ok(lambda: list(sampler(x, 2)))
        assert sum(len(batch["user_ids"]) for batch in batches) == int((x > 0).sum())
    else:
        assert_clear_error(lambda: sampler(x, 2))


# --- the reported reproducers, one explicit test each ---------------------------------------


@pytest.mark.parametrize("name", ["MMoE", "PLE", "ESMM", "ScenarioMoE", "STAR", "SharedBottom"])
def test_empty_batch_gives_empty_outputs_and_a_clear_loss_error(name):
    model, t, _ = build_click(name)
    batch = random_batch(tiny_features(), 0, num_tasks=t, num_scenarios=3)
    for training in (True, False):
        model.train(training)
        assert model(batch).shape == (0, t) and model.predict(batch).shape == (0, t)
    assert_clear_error(lambda: model.loss(batch), match="empty")


def test_empty_sequences_in_sasrec_and_encoder_decoder():
    sasrec = M.SASRec(M.SASRecConfig.tiny())
    assert sasrec(torch.zeros(0, 8, dtype=torch.long)).shape == (0, 8, 16)
    assert sasrec.recommend(torch.zeros(0, 8, dtype=torch.long), 3).shape == (0, 3)
    assert_clear_error(lambda: sasrec.scores(torch.zeros(2, 0, dtype=torch.long)), match="L = 0")
    nxt = M.NextItems(M.NextItemsConfig.tiny())
    assert nxt.generate(torch.zeros(0, 6, dtype=torch.long)).shape == (0, 2)


@pytest.mark.parametrize("name", ["STAR", "HAMUR"])
def test_one_row_training_batch_trains(name):
    """N mod batch_size = 1 leaves a one-row batch: BatchNorm uses its running statistics."""
    model, t, _ = build_click(name)
    batch = random_batch(tiny_features(), 9, num_tasks=t, num_scenarios=3)
    batches = TensorBatcher(batch, batch_size=4, shuffle=False)  # 4 + 4 + 1 rows
    history = fit(model, batches, epochs=2, progress=False)
    assert all(np.isfinite(epoch["train_loss"]) for epoch in history.epochs)
    model.train()
    one = {key: value[:1] for key, value in batch.items()}
    losses = model.loss(one)
    losses.sum().backward()
    assert bool(torch.isfinite(losses).all())


def test_ids_past_the_vocabulary_name_the_feature_and_its_size():
    model, _, _ = build_click("MMoE")
    batch = random_batch(tiny_features(), 4, num_tasks=2)
    batch["item"][1] = 30
    exc = assert_clear_error(lambda: model(batch))
    assert "'item'" in str(exc) and "vocabulary size 30" in str(exc)
    batch["item"][1] = -2
    assert "'item'" in str(assert_clear_error(lambda: model(batch)))


def test_fractional_float_ids_are_refused_whole_floats_accepted():
    model, _, _ = build_click("MMoE")
    model.eval()
    batch = random_batch(tiny_features(), 4, num_tasks=2)
    expected = model(batch)
    as_float = {**batch, "user": batch["user"].float()}
    torch.testing.assert_close(model(as_float), expected, rtol=0, atol=0)
    as_float["user"][0] = 1.7
    assert_clear_error(lambda: model(as_float), match="non-integral")


def test_nan_dense_feature_is_named():
    model, _, _ = build_click("STAR")
    batch = random_batch(tiny_features(), 4, num_tasks=1, num_scenarios=3)
    batch["dense"][2, 1] = float("nan")
    assert "'dense'" in str(assert_clear_error(lambda: model(batch), match="NaN"))


def test_sasrec_k_past_the_unseen_items_never_returns_seen_or_padding():
    torch.manual_seed(0)
    model = M.SASRec(M.SASRecConfig.tiny())  # 30 items
    history = torch.tensor([[1, 2, 3, 4, 5, 6, 7, 8]])
    for k in (23, 31, 40):
        exc = assert_clear_error(lambda k=k: model.recommend(history, k), match="only 22 unseen")
        assert "k <= 22" in str(exc)
    top = model.recommend(history, 22)
    assert set(top[0].tolist()) == set(range(9, 31))  # every unseen item, nothing else


def test_popularity_and_sasrec_share_one_top_k_rule():
    pop = M.Popularity(10).fit(torch.arange(1, 11))
    history = torch.tensor([[0, 1, 2, 3]])
    assert_clear_error(lambda: pop.recommend(history, 8), match="only 7 unseen")
    assert sorted(pop.recommend(history, 7)[0].tolist()) == list(range(4, 11))
    assert pop.recommend.__doc__ and "top_k_unseen" in pop.recommend.__doc__
    assert "top_k_unseen" in M.SASRec.recommend.__doc__


def test_nan_scores_are_refused_with_a_clear_message():
    scores = torch.tensor([[float("-inf"), 0.3, float("nan"), 0.1]])
    exc = assert_clear_error(lambda: top_k_unseen(scores, torch.tensor([[0]]), 2), match="NaN")
    assert "unseen" not in str(exc)  # not the misleading "only 0 unseen items left"


def test_config_reproducers():
    assert_clear_error(lambda: M.MMoEConfig.tiny(expert_hidden=(-8,)), match="expert_hidden")
    assert_clear_error(lambda: M.SharedBottomConfig.tiny(dropout=-0.1), match="dropout")
    assert_clear_error(lambda: M.MMoEConfig.tiny(num_tasks=2.5), match="num_tasks")
    assert_clear_error(lambda: M.SASRecConfig.tiny(d_model=10, num_heads=3), match="divisible")
    assert_clear_error(lambda: M.SASRecConfig.tiny(num_heads=0), match="num_heads")


def test_negative_scenario_id_says_ids_start_at_zero():
    model, _, _ = build_click("STAR")
    batch = random_batch(tiny_features(), 4, num_tasks=1, num_scenarios=3)
    batch["scenario_ids"][0] = -1
    exc = assert_clear_error(lambda: model(batch), match="start at 0")
    assert "num_scenarios > -1" not in str(exc)
