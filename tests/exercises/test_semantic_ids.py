import numpy as np

from mtrec.exercises import semantic_ids as exercise


def test_reference_passes(capsys):
    assert exercise.check_semantic_ids(exercise.reference_residual_codes)
    assert "All 3 cases passed" in capsys.readouterr().out


def test_known_mistakes_fail_and_are_named(capsys):
    for wrong, message in exercise.DIAGNOSES:
        assert not exercise.check_semantic_ids(wrong)
        out = capsys.readouterr().out
        assert "FAILED" in out and message[:30] in out, (wrong.__name__, out)


def test_hand_case_codes():
    codes = exercise.cases()[0].expected
    np.testing.assert_array_equal(codes.numpy(), [[1, 1], [2, 2], [0, 0]])
