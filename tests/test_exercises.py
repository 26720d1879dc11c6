"""Classroom exercises: every check fails on the untouched exercise and passes on its solution.

The student's function is taken from the cell tagged ``student`` in each notebook's JSON and run
with ``exec`` (the way the notebook would define it), so the test sees exactly what a student sees.
"""

import json

import numpy as np
import pytest
import torch

from mtrec import exercises
from mtrec.exercises import (
    attention,
    cascade,
    classroom,
    distillation,
    mmoe_gate,
    ndcg,
    new_scenario,
    semantic_ids,
    star,
    timing,
    transe,
)
from mtrec.utils import REPO_ROOT

FOLDER = REPO_ROOT / "notebooks" / "exercises"
# notebook stem → (name of the function the student writes, its check)
EXERCISES = {
    "01_attention": ("attention", exercises.check_attention),
    "02_mmoe_gate": ("mmoe_gate", exercises.check_mmoe_gate),
    "03_star_layer": ("star_linear", exercises.check_star_linear),
    "04_distillation_loss": ("distillation_loss", exercises.check_distillation_loss),
    "05_ndcg": ("ndcg_at_k", exercises.check_ndcg),
    "06_scenario_classifier": ("fit_predict", exercises.check_scenario_classifier),
    "07_semantic_ids": ("residual_codes", exercises.check_semantic_ids),
    "08_step_percentiles": ("step_percentiles", exercises.check_step_percentiles),
    "09_new_scenario": ("add_scenario_slice", exercises.check_add_scenario_slice),
    "10_transe_score": ("transe_score", exercises.check_transe_score),
    "11_pick_depth": ("pick_depth", exercises.check_pick_depth),
}
SLOW = {"06_scenario_classifier"}  # trains two classifiers on 4,000 real reviews


def student_function(path, name):
    """Exec the notebook's ``student``-tagged cells and return the function ``name``."""
    cells = json.loads(path.read_text())["cells"]
    sources = ["".join(c["source"]) for c in cells if "student" in c["metadata"].get("tags", [])]
    assert sources, f"{path.name}: no cell tagged 'student'"
    namespace = {"np": np, "torch": torch}
    exec(compile("\n".join(sources), str(path), "exec"), namespace)  # our own notebook's cell
    return namespace[name]


def _params(slow_ok=True):
    return [
        pytest.param(stem, marks=pytest.mark.slow) if stem in SLOW and slow_ok else stem
        for stem in EXERCISES
    ]


def test_every_exercise_has_a_solution():
    stems = sorted(p.stem for p in FOLDER.glob("*.ipynb"))
    assert stems == sorted(EXERCISES)
    assert sorted(p.stem for p in (FOLDER / "solutions").glob("*.ipynb")) == stems


def test_the_classroom_kit_knows_every_exercise():
    """mtrec exercises release/grade read the same function and check as these tests."""
    kit = {e.stem: (e.function, exercises.CHECKS[e.check]) for e in classroom.EXERCISES}
    assert kit == EXERCISES
    assert set(exercises.EXAMPLE_MISTAKES) == set(exercises.CHECKS)


@pytest.mark.parametrize("stem", list(EXERCISES))
def test_check_fails_kindly_on_the_untouched_exercise(stem, capsys):
    name, check = EXERCISES[stem]
    function = student_function(FOLDER / f"{stem}.ipynb", name)
    assert check(function) is False
    assert "not implemented yet" in capsys.readouterr().out


@pytest.mark.parametrize("stem", _params())
def test_check_passes_on_the_solution(stem, capsys):
    name, check = EXERCISES[stem]
    function = student_function(FOLDER / "solutions" / f"{stem}.ipynb", name)
    assert check(function) is True, capsys.readouterr().out


@pytest.mark.parametrize("stem", list(EXERCISES))
def test_stored_outputs_have_no_errors_and_solutions_pass(stem):
    for path in (FOLDER / f"{stem}.ipynb", FOLDER / "solutions" / f"{stem}.ipynb"):
        cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
        outputs = [o for c in cells for o in c.get("outputs", [])]
        assert outputs, f"{path}: outputs are not stored"
        assert not [o for o in outputs if o["output_type"] == "error"], f"{path}: error stored"
    text = (FOLDER / "solutions" / f"{stem}.ipynb").read_text()
    assert "Well done!" in text


MODULES = [attention, mmoe_gate, star, distillation, ndcg, semantic_ids, timing, new_scenario,
           transe, cascade]  # fmt: skip


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.split(".")[-1])
def test_known_mistakes_fail_with_their_diagnosis(module, capsys):
    check = {
        attention: exercises.check_attention,
        mmoe_gate: exercises.check_mmoe_gate,
        star: exercises.check_star_linear,
        distillation: exercises.check_distillation_loss,
        ndcg: exercises.check_ndcg,
        semantic_ids: exercises.check_semantic_ids,
        timing: exercises.check_step_percentiles,
        new_scenario: exercises.check_add_scenario_slice,
        transe: exercises.check_transe_score,
        cascade: exercises.check_pick_depth,
    }[module]
    for wrong, message in module.DIAGNOSES:
        assert check(wrong) is False, wrong.__name__
        out = capsys.readouterr().out
        assert "FAILED" in out or "raised" in out, out
        assert "expected" in out or "hint:" in out or "diagnosis:" in out, out
        assert message in out, f"{wrong.__name__} is not named:\n{out}"


def test_a_wrong_shape_and_a_crash_are_explained_not_raised(capsys):
    assert exercises.check_attention(lambda q, k, v, mask=None: (q.sum(-1), q)) is False
    out = capsys.readouterr().out
    assert "output 0: wrong shape: expected (1, 1, 4, 8), got (1, 1, 4)" in out

    def crashes(q, k, v, mask=None):
        return q @ k  # (…, L, D) @ (…, L, D): shapes do not match

    assert exercises.check_attention(crashes) is False
    out = capsys.readouterr().out
    assert "your function raised RuntimeError" in out and "hint:" in out
    assert exercises.check_ndcg(0.5) is False
    assert "pass your function itself" in capsys.readouterr().out


def test_references_agree_with_torch_and_sklearn():
    for case in attention.cases():
        expected = torch.nn.functional.scaled_dot_product_attention(
            case.kwargs["q"], case.kwargs["k"], case.kwargs["v"], attn_mask=case.kwargs["mask"]
        )
        torch.testing.assert_close(case.expected[0], expected, atol=1e-5, rtol=1e-4)
    from sklearn.metrics import ndcg_score

    rng = np.random.default_rng(0)
    scores, rel = rng.random((6, 12)), rng.integers(0, 3, (6, 12)).astype(float)
    rel[:, 0] = 1.0
    assert ndcg.reference_ndcg(scores, rel, 5) == pytest.approx(ndcg_score(rel, scores, k=5))


def test_an_endless_loop_is_stopped_and_named(capsys):
    def endless(scores, relevance, k):
        while True:
            pass

    assert exercises._harness.call_with_time_limit is not None
    from mtrec.exercises._harness import run_cases

    assert run_cases("NDCG@K", endless, ndcg.cases()[:1], time_limit_s=0.5) is False
    out = capsys.readouterr().out
    assert "case 1/1 (perfect ranking gives 1): timed out after 0.5 s" in out


def test_an_endless_loop_in_a_thread_is_abandoned(capsys):
    import threading

    from mtrec.exercises._harness import run_cases

    result, release = {}, threading.Event()

    def endless(scores, relevance, k):
        while not release.is_set():  # endless for the check; released below so no thread lingers
            pass

    def check():
        result["passed"] = run_cases("NDCG@K", endless, ndcg.cases()[:1], time_limit_s=0.3)

    worker = threading.Thread(target=check)
    worker.start()
    worker.join(10)
    release.set()
    assert result == {"passed": False}
    assert "timed out after 0.3 s" in capsys.readouterr().out


def test_exit_meta_tensors_and_none_are_reported_not_raised(capsys):
    import sys

    assert exercises.check_ndcg(lambda scores, relevance, k: sys.exit(3)) is False
    assert "called exit()" in capsys.readouterr().out
    meta = lambda q, k, v, mask=None: (q.to("meta"), q.to("meta"))  # noqa: E731
    assert exercises.check_attention(meta) is False
    assert "meta tensor" in capsys.readouterr().out
    assert exercises.check_ndcg(lambda scores, relevance, k: None) is False
    assert "returned None" in capsys.readouterr().out


def test_the_scenario_checker_explains_none_and_hides_test_labels(capsys, monkeypatch):
    from mtrec.exercises import scenario

    texts = ["a dress", "a top", "jeans"]
    labels = np.array(["Dresses", "Tops", "Bottoms"])
    monkeypatch.setattr(scenario, "_split", lambda: (texts, labels, texts, labels))
    assert scenario.check_scenario_classifier(lambda a, b, c: None) is False
    assert "returned None" in capsys.readouterr().out
    assert len(scenario.training_data()) == 3  # train texts, train labels, test texts only


def test_every_exercise_shows_an_example_failure():
    for stem in EXERCISES:
        for path in (FOLDER / f"{stem}.ipynb", FOLDER / "solutions" / f"{stem}.ipynb"):
            text = path.read_text()
            assert "show_example_failure" in text, path
            assert "<torch._C.Generator" not in text, path


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.split(".")[-1])
def test_a_check_leaves_the_learners_random_state_alone(module, capsys):
    """An inline self-check in a notebook must not move the numbers of the cells after it."""
    check = {
        attention: (exercises.check_attention, attention.reference_attention),
        mmoe_gate: (exercises.check_mmoe_gate, mmoe_gate.reference_mmoe_gate),
        star: (exercises.check_star_linear, star.reference_star_linear),
        distillation: (exercises.check_distillation_loss, distillation.reference_distillation_loss),
        ndcg: (exercises.check_ndcg, ndcg.reference_ndcg),
        semantic_ids: (exercises.check_semantic_ids, semantic_ids.reference_residual_codes),
        timing: (exercises.check_step_percentiles, timing.reference_step_percentiles),
        new_scenario: (
            exercises.check_add_scenario_slice,
            new_scenario.reference_add_scenario_slice,
        ),
        transe: (exercises.check_transe_score, transe.reference_transe_score),
        cascade: (exercises.check_pick_depth, cascade.reference_pick_depth),
    }[module]
    torch.manual_seed(1234)
    before = torch.get_rng_state()
    assert check[0](check[1])
    assert torch.equal(torch.get_rng_state(), before), (
        f"{module.__name__} reseeds torch's global RNG"
    )
