"""mtrec.checks: the shared input checks on valid inputs (bad inputs: tests/robustness)."""

import warnings

import numpy as np
import pandas as pd
import torch

from mtrec.checks import as_tensor, check_ids


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


def test_as_tensor_shares_a_writable_array_and_copies_a_read_only_one():
    writable = np.arange(3)
    assert as_tensor(writable).data_ptr() == writable.ctypes.data  # no copy
    read_only = np.arange(3)
    read_only.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tensor = as_tensor(read_only, np.int64)
    assert tensor.tolist() == [0, 1, 2] and tensor.data_ptr() != read_only.ctypes.data
