import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mtrec.eval.metrics import auc
from mtrec.eval.significance import compare_to_baseline, holm, paired_bootstrap, paired_t_test


def test_paired_t_test_matches_the_formula():
    a = np.array([0.751, 0.748, 0.755, 0.750, 0.752])
    b = np.array([0.749, 0.747, 0.751, 0.749, 0.748])
    d = a - b
    t = d.mean() / (d.std(ddof=1) / np.sqrt(len(d)))
    result = paired_t_test(a, b)
    assert result.statistic == pytest.approx(t)
    assert result.p_value == pytest.approx(2 * stats.t.sf(abs(t), df=len(d) - 1))
    assert result.diff == pytest.approx(d.mean()) and result.n == 5


def test_paired_t_test_limits():
    a = [0.7, 0.71, 0.72]
    assert paired_t_test(a, a).p_value == 1.0  # identical models: nothing to see
    shifted = paired_t_test(np.add(a, 0.01), a)  # the same shift on every seed
    assert shifted.p_value == 0.0 and shifted.diff == pytest.approx(0.01)
    noisy = paired_t_test([0.70, 0.72, 0.69, 0.73], [0.71, 0.70, 0.72, 0.71])
    assert noisy.p_value > 0.5  # differences of both signs: not significant


def test_paired_t_test_errors():
    with pytest.raises(ValueError, match="equal length"):
        paired_t_test([0.1, 0.2], [0.1])
    with pytest.raises(ValueError, match="equal length"):
        paired_t_test([0.1], [0.2])
    with pytest.raises(ValueError, match="NaN"):
        paired_t_test([0.1, float("nan")], [0.1, 0.2])


def test_holm():
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])
    np.testing.assert_allclose(holm([0.5, np.nan]), [0.5, np.nan])


def test_paired_bootstrap_limits():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    same = rng.random(400)
    tie = paired_bootstrap(y, same, same, num_resamples=200)
    assert tie.diff == 0.0 and tie.p_value == 1.0
    good = y + 0.5 * rng.random(400)  # ranks every positive above every negative
    better = paired_bootstrap(y, good, same, num_resamples=200)
    assert better.diff == pytest.approx(1.0 - auc(y, same)) and better.p_value < 0.01


def test_compare_to_baseline_marks_real_and_noise_differences():
    rows = []
    for seed in range(5):
        base = 0.75 + 0.002 * np.sin(seed)
        for model, value in [
            ("sb", base),
            ("real", base + 0.01),
            ("noise", base + (-1) ** seed * 0.002),
        ]:
            rows.append(("d", "all", "y", "auc", model, seed, value))
            rows.append(("d", "all", "y", "logloss", model, seed, 1 - value))
    frame = pd.DataFrame(
        rows, columns=["dataset", "scenario", "task", "metric", "model", "seed", "value"]
    )
    out = compare_to_baseline(frame, "sb").set_index(["metric", "model"])
    assert out.loc[("auc", "real"), "significant_holm"] and out.loc[("auc", "real"), "better"]
    assert not out.loc[("auc", "noise"), "significant"]
    assert out.loc[("logloss", "real"), "better"]  # lower logloss is better
    assert out.loc[("auc", "real"), "diff"] == pytest.approx(0.01)
    with pytest.raises(ValueError, match="baseline"):
        compare_to_baseline(frame, "missing")
    with pytest.raises(ValueError, match="lacks columns"):
        compare_to_baseline(frame.drop(columns="seed"), "sb")


def test_a_gap_counts_only_beyond_the_larger_seed_std():
    from mtrec.eval.significance import beyond_seed_noise

    sign, noise = beyond_seed_noise([0.03, -0.03, 0.01, 0.02], [0.01, 0.01, 0.02, np.nan],
                                    [0.02, 0.02, 0.0, np.nan])  # fmt: skip
    assert sign.tolist() == [1, -1, 0, 1]  # NaN std: a deterministic model, no noise
    assert noise.tolist() == [0.02, 0.02, 0.02, 0.0]
    assert beyond_seed_noise(0.02, 0.02, 0.01)[0] == 0  # equal to the noise: no difference
