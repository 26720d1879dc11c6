"""Classroom exercises: hidden reference cases and checks that explain what went wrong.

Each ``check_<name>(student_function)`` runs the student's function on hidden, seeded cases and
prints one line per case; on the first failure it prints the inputs, the expected and the received
values and a hint (or a diagnosis when the answer matches a known mistake). It returns ``True`` or
``False`` and never raises on a wrong or unfinished answer, so an exercise notebook runs top to
bottom and says "not implemented yet" until the TODO cells are filled in.

Exercises (notebooks/exercises/): attention, MMoE gate, STAR layer, distillation loss, NDCG@K, a
scenario classifier that beats a decision tree on real reviews, semantic IDs, step-time
percentiles, a new scenario's STAR slice, the TransE score and the cascade's depth rule.
``mtrec exercises release`` (:mod:`mtrec.exercises.classroom`) hands them out and ``mtrec exercises
grade`` (:mod:`mtrec.exercises.grading`) grades a class.
"""

from mtrec.exercises import (
    attention,
    cascade,
    distillation,
    mmoe_gate,
    ndcg,
    new_scenario,
    scenario,
    semantic_ids,
    star,
    timing,
    transe,
)
from mtrec.exercises._harness import CaseResult, recording
from mtrec.exercises.attention import check_attention
from mtrec.exercises.cascade import check_pick_depth
from mtrec.exercises.distillation import check_distillation_loss
from mtrec.exercises.mmoe_gate import check_mmoe_gate
from mtrec.exercises.ndcg import check_ndcg
from mtrec.exercises.new_scenario import check_add_scenario_slice
from mtrec.exercises.scenario import check_scenario_classifier
from mtrec.exercises.semantic_ids import check_semantic_ids
from mtrec.exercises.star import check_star_linear
from mtrec.exercises.timing import check_step_percentiles
from mtrec.exercises.transe import check_transe_score

CHECKS = {
    "attention": check_attention,
    "mmoe_gate": check_mmoe_gate,
    "star_linear": check_star_linear,
    "distillation_loss": check_distillation_loss,
    "ndcg": check_ndcg,
    "scenario_classifier": check_scenario_classifier,
    "semantic_ids": check_semantic_ids,
    "step_percentiles": check_step_percentiles,
    "add_scenario_slice": check_add_scenario_slice,
    "transe_score": check_transe_score,
    "pick_depth": check_pick_depth,
}

# A known mistake per exercise, run by show_example_failure so students see a failure message
EXAMPLE_MISTAKES = {
    "attention": attention.DIAGNOSES[0][0],
    "mmoe_gate": mmoe_gate.DIAGNOSES[0][0],
    "star_linear": star.DIAGNOSES[0][0],
    "distillation_loss": distillation.DIAGNOSES[0][0],
    "ndcg": ndcg.DIAGNOSES[0][0],
    "scenario_classifier": scenario.majority_class,
    "semantic_ids": semantic_ids.DIAGNOSES[0][0],
    "step_percentiles": timing.DIAGNOSES[0][0],
    "add_scenario_slice": new_scenario.DIAGNOSES[0][0],
    "transe_score": transe.DIAGNOSES[0][0],
    "pick_depth": cascade.DIAGNOSES[0][0],
}


def show_example_failure(name: str) -> bool:
    """Run the check ``name`` on a known wrong answer and print its feedback (returns False).

    Shows, before students start, what a failing check prints: the failing case, its inputs, the
    expected and the received values, and the named mistake or a hint.
    """
    if name not in CHECKS:
        raise KeyError(f"no exercise named {name!r}; choose one of {sorted(CHECKS)}")
    return CHECKS[name](EXAMPLE_MISTAKES[name])


__all__ = [
    "CHECKS", "EXAMPLE_MISTAKES", "CaseResult", "check_add_scenario_slice", "check_attention",
    "check_distillation_loss", "check_mmoe_gate", "check_ndcg", "check_pick_depth",
    "check_scenario_classifier", "check_semantic_ids", "check_star_linear",
    "check_step_percentiles", "check_transe_score", "recording", "show_example_failure",
]  # fmt: skip
