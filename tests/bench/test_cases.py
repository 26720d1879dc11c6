"""The benchmarked models: the real-size distillation pair and the one list of model names."""

from mtrec import bench
from mtrec.train import count_parameters
from mtrec.train.distill import Distiller


def test_benchmark_pair_builds_a_larger_teacher_with_matching_outputs():
    teacher, student, example_batch = bench.benchmark_pair()
    batch = example_batch(4)
    assert teacher(batch).shape == student(batch).shape == (4, 2)
    assert count_parameters(teacher) > 20 * count_parameters(student)
    Distiller(student, teacher, example_batch=batch)  # shapes agree: no error


def test_model_names_are_the_names_of_the_cases_and_comparisons():
    cases = [case.name for group in bench.model_cases().values() for case in group]
    flop = [
        case.name for group, cs in bench.model_cases().items() if group != "scenario" for case in cs
    ]
    assert list(bench.FLOP_MODELS) == flop
    assert (
        set(cases) < set(bench.MODEL_NAMES) and len(set(bench.MODEL_NAMES)) == 13 + 7
    )  # + multi-scenario
    attention = [bench.attention_name("mtrec", l, d, h) for _, l, d, h in bench.ATTENTION_SHAPES]
    assert list(bench.MODEL_NAMES[:2]) == attention
