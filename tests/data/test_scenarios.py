"""The multi-scenario benchmark datasets follow their written protocol (real, cached data)."""

import numpy as np
import pytest

from mtrec.data.scenarios import ML_AGE_SCENARIOS, age_scenario_ids, movielens_age_scenarios


def test_age_scenarios_mirror_the_ml1m_age_groups():
    ages = np.array([7, 18, 24, 25, 34, 35, 56, 73])
    np.testing.assert_array_equal(age_scenario_ids(ages), [0, 0, 0, 1, 1, 2, 2, 2])
    with pytest.raises(ValueError, match="no age scenario"):
        age_scenario_ids(np.array([-1]))


def test_movielens_age_scenarios_definition():
    frame = movielens_age_scenarios()
    assert len(frame) == 100_000
    assert list(frame.scenario.unique()) != [] and set(frame.scenario) == set(ML_AGE_SCENARIOS)
    assert ((frame.rating > 3) == frame.like.astype(bool)).all()
    shares = frame.scenario_id.value_counts(normalize=True).sort_index().round(3).tolist()
    assert shares == [0.266, 0.354, 0.380]  # written down in datasets/README.md
    assert frame.groupby("user_id").scenario_id.nunique().max() == 1  # a user stays in one
