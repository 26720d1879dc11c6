"""Is a difference between two models real? Paired tests across seeds or over test rows.

Single runs cannot separate models that differ by 0.001–0.005 AUC: the seed alone moves AUC by
that much. Two paired tests, both two-sided:

* :func:`paired_t_test`: one metric value per seed for each model, trained on the same split with
  the same seeds (pairs share data order and split), tested with scipy's ``ttest_rel``. With 5
  seeds it has 4 degrees of freedom: only consistent differences pass.
* :func:`paired_bootstrap`: one trained model each, the *test rows* resampled with replacement
  (the same resample for both models); the p-value is twice the share of resamples whose
  difference falls on the other side of 0. It measures test-set noise, not seed noise.

:func:`compare_to_baseline` runs the t-test for every (model, scenario) against one baseline and
adds Holm's correction over the family of comparisons of each table (one dataset, task and
metric), so "significant" holds for the table as a whole, not just one cell.

Where only the mean and std over seeds are recorded (``quality.csv``), the course reads a
difference with one rule, :func:`beyond_seed_noise`: a difference of means counts only when it
exceeds the larger of the two seed stds; anything smaller is "no difference".
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mtrec.checks import check_float, check_int
from mtrec.eval.metrics import ArrayLike, UndefinedMetricWarning, _np, auc

HIGHER_IS_BETTER = {"auc": True, "gauc": True, "logloss": False, "rmse": False}


def beyond_seed_noise(
    delta: ArrayLike, std_a: ArrayLike, std_b: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """The course's rule for "is this gap real?" from means and stds over seeds.

    Args:
        delta: mean of a − mean of b (one value or an array).
        std_a, std_b: their stds over seeds (NaN for a deterministic model: no noise).

    Returns:
        (sign, noise): +1 where ``delta`` > noise, −1 where ``delta`` < −noise, else 0 ("no
        difference"); noise = the larger of the two stds.
    """
    noise = np.fmax(
        np.nan_to_num(np.asarray(std_a, float)), np.nan_to_num(np.asarray(std_b, float))
    )
    delta = np.asarray(delta, float)
    return np.select([delta > noise, delta < -noise], [1, -1], 0), noise


@dataclass(frozen=True)
class PairedTest:
    """Result of a paired test: mean difference a − b, its statistic and two-sided p-value."""

    diff: float  # mean of a − b
    statistic: float  # t (t-test) or the bootstrap standard error of the difference
    p_value: float  # two-sided
    n: int  # pairs (seeds) or bootstrap resamples


def paired_t_test(a: Sequence[float], b: Sequence[float]) -> PairedTest:
    """Paired t-test of ``a`` against ``b`` (same seeds, same order).

    Equal pairs give p = 1; a constant non-zero difference (zero variance) gives p = 0.

    Raises:
        ValueError: when the lengths differ, fewer than 2 pairs, or any value is not finite.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError(
            f"paired_t_test needs two 1-D sequences of equal length >= 2 (one value per seed), "
            f"got shapes {a.shape} and {b.shape}"
        )
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("paired_t_test got NaN or inf: drop seeds whose metric is undefined")
    d = a - b
    if np.allclose(d, d[0], rtol=0, atol=1e-15):  # zero variance: t is 0/0 or ±inf
        return PairedTest(float(d.mean()), 0.0 if d[0] == 0 else np.inf, float(d[0] == 0), len(d))
    from scipy import stats  # imported when used: ~0.5 s, paid by every `import mtrec.reporting`

    result = stats.ttest_rel(a, b)
    return PairedTest(float(d.mean()), float(result.statistic), float(result.pvalue), len(d))


def paired_bootstrap(
    labels: ArrayLike,
    scores_a: ArrayLike,
    scores_b: ArrayLike,
    *,
    metric: Callable[[np.ndarray, np.ndarray], float] = auc,
    num_resamples: int = 1000,
    seed: int = 0,
) -> PairedTest:
    """Bootstrap over test rows of ``metric(labels, scores_a) − metric(labels, scores_b)``.

    Both models are scored on the same resampled rows; resamples where the metric is undefined
    (e.g. one class only) are dropped.
    """
    y, sa, sb = _np(labels), _np(scores_a), _np(scores_b)
    if not (y.shape == sa.shape == sb.shape) or y.ndim != 1:
        raise ValueError(f"labels and both scores must be 1-D of one length, got {y.shape}, "
                         f"{sa.shape}, {sb.shape}")  # fmt: skip
    num_resamples = check_int(num_resamples, "num_resamples", min=2)
    if len(y) == 0:
        raise ValueError("labels and scores are empty; pass the test rows of both models")
    rng = np.random.default_rng(seed)
    diffs = []
    with warnings.catch_warnings():  # undefined resamples are dropped below, as documented
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        for _ in range(num_resamples):
            rows = rng.integers(0, len(y), len(y))
            diffs.append(metric(y[rows], sa[rows]) - metric(y[rows], sb[rows]))
    diffs = np.asarray(diffs)
    diffs = diffs[np.isfinite(diffs)]
    if diffs.size == 0:
        raise ValueError("the metric is undefined on every resample (one class only?)")
    p = min(1.0, 2 * min((diffs <= 0).mean(), (diffs >= 0).mean()))
    observed = metric(y, sa) - metric(y, sb)
    return PairedTest(float(observed), float(diffs.std(ddof=1)), float(p), int(diffs.size))


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values (same order as given; NaN stays NaN)."""
    p = np.asarray(p_values, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    order = ok[np.argsort(p[ok], kind="stable")]
    m = len(order)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def compare_to_baseline(
    per_seed: pd.DataFrame,
    baseline: str,
    *,
    table: Sequence[str] = ("dataset", "task", "metric"),
    cell: Sequence[str] = ("scenario",),
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Paired t-test of every model against ``baseline`` in every cell, Holm-corrected per table.

    Args:
        per_seed: tidy rows with columns ``model``, ``seed``, ``value`` and the ``table`` and
            ``cell`` columns (one value per model, seed and cell).
        baseline: the model every other model is compared with.
        table: columns naming one table: Holm's family.
        cell: columns naming one cell inside a table (e.g. the scenario).
        alpha: significance level, in (0, 1).

    Returns:
        One row per (table, cell, model ≠ baseline): mean, baseline_mean, diff (model − baseline),
        p_value, p_holm, seeds, better (in the metric's direction), significant (p < alpha),
        significant_holm (p_holm < alpha).

    Raises:
        ValueError: ``alpha`` outside (0, 1); a model with two rows for one seed in a cell
            (they would be averaged silently); no (cell, model) with at least 2 paired seeds.
    """
    alpha = check_float(alpha, "alpha")
    if not 0 < alpha < 1:
        raise ValueError(
            f"alpha is a significance level in (0, 1), got {alpha}; e.g. 0.05 for 5% (not 5)"
        )
    if not isinstance(per_seed, pd.DataFrame):
        raise TypeError(f"per_seed must be a tidy DataFrame, got {type(per_seed).__name__}")
    need = {"model", "seed", "value", *table, *cell}
    missing = sorted(need - set(per_seed.columns))
    if missing:
        raise ValueError(f"per_seed lacks columns {missing}; it needs {sorted(need)}")
    if baseline not in set(per_seed.model):
        raise ValueError(f"baseline {baseline!r} not among models {sorted(set(per_seed.model))}")
    keys = [*table, *cell]
    twice = per_seed.duplicated([*keys, "model", "seed"], keep=False)
    if twice.any():
        sizes = per_seed[twice].groupby([*keys, "model", "seed"], sort=False).size()
        (*where, model, seed), count = sizes.index[0], int(sizes.iloc[0])
        cell_text = ", ".join(f"{c}={v!r}" for c, v in zip(keys, where))
        raise ValueError(
            f"model {model!r} has {count} rows for seed {seed} ({cell_text}); a paired test "
            "needs one value per model, seed and cell (duplicates would be averaged): drop the "
            "repeated run, or give each run its own seed"
        )
    records, paired = [], []
    for key, group in per_seed.groupby(keys, sort=True):
        wide = group.pivot_table(index="seed", columns="model", values="value").dropna(axis=0)
        if baseline not in wide or len(wide.columns) < 2:
            continue
        paired.append(len(wide))
        if len(wide) < 2:
            continue
        for model in [m for m in wide.columns if m != baseline]:
            test = paired_t_test(wide[model].to_numpy(), wide[baseline].to_numpy())
            records.append({**dict(zip(keys, key)), "model": model, "mean": wide[model].mean(),
                            "baseline_mean": wide[baseline].mean(), "diff": test.diff,
                            "p_value": test.p_value, "seeds": test.n})  # fmt: skip
    out = pd.DataFrame.from_records(records)
    if out.empty:
        if paired:  # models to compare, but too few seeds
            raise ValueError(
                f"a comparison needs at least 2 seeds per model (the same seeds as the "
                f"baseline {baseline!r}), got {max(paired)}; run every model with 2 or more of "
                "the same seeds (5 is usual)"
            )
        return out  # only the baseline: nothing to compare
    out["p_holm"] = out.groupby(list(table), group_keys=False)["p_value"].transform(holm)
    higher = out["metric"].map(HIGHER_IS_BETTER).fillna(True) if "metric" in out else True
    out["better"] = np.where(higher, out["diff"] > 0, out["diff"] < 0)
    out["significant"] = out["p_value"] < alpha
    out["significant_holm"] = out["p_holm"] < alpha
    return out
