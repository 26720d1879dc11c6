"""Classroom exercises: hidden reference cases and checks that explain what went wrong.

Each ``check_<name>(student_function)`` runs the student's function on hidden, seeded cases and
prints one line per case; on the first failure it prints the inputs, the expected and the received
values and a hint (or a diagnosis when the answer matches a known mistake). It returns ``True`` or
``False`` and never raises on a wrong or unfinished answer, so an exercise notebook runs top to
bottom and says "not implemented yet" until the TODO cells are filled in.

Exercises (notebooks/exercises/): attention, MMoE gate, STAR layer, distillation loss, NDCG@K and a
scenario classifier that beats a decision tree on real reviews.
"""

from mtrec.exercises.attention import check_attention
from mtrec.exercises.distillation import check_distillation_loss
from mtrec.exercises.mmoe_gate import check_mmoe_gate
from mtrec.exercises.ndcg import check_ndcg
from mtrec.exercises.scenario import check_scenario_classifier
from mtrec.exercises.star import check_star_linear

CHECKS = {
    "attention": check_attention,
    "mmoe_gate": check_mmoe_gate,
    "star_linear": check_star_linear,
    "distillation_loss": check_distillation_loss,
    "ndcg": check_ndcg,
    "scenario_classifier": check_scenario_classifier,
}

__all__ = [
    "CHECKS", "check_attention", "check_distillation_loss", "check_mmoe_gate", "check_ndcg",
    "check_scenario_classifier", "check_star_linear",
]  # fmt: skip
