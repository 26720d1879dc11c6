"""mtrec.checks: the shared input checks on valid inputs (bad inputs: tests/robustness)."""

import warnings

import numpy as np
import pandas as pd
import torch

from mtrec.checks import check_ids


def test_check_ids_takes_a_read_only_column_without_a_warning():
    column = pd.Series([3, 0, 2]).to_numpy()
    column.flags.writeable = False  # pandas hands out read-only views under copy-on-write
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ids = check_ids(column, "item_ids", vocab_size=4)
    assert ids.dtype == torch.long and ids.tolist() == [3, 0, 2]
    assert not column.flags.writeable  # the caller's array is left as it was


def test_check_ids_keeps_a_long_tensor_as_is():
    ids = torch.tensor([1, 2])
    assert check_ids(ids, "ids", vocab_size=3) is ids
    assert check_ids(np.array([1.0, 2.0]), "ids").tolist() == [1, 2]
