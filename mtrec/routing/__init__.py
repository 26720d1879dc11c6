"""The front of the recommendation pipeline: scenario classification, then task mapping.

user input → features → :class:`ScenarioClassifier` (which scenario is this request in?) →
task mapping (:class:`RuleTaskMapper` from a declared table, or :class:`LearnedTaskMapper`, a
learned gate) → the scenario and task models.

* :mod:`mtrec.routing.classifier` — :class:`ScenarioClassifier` (tree, svm, neural, lm).
* :mod:`mtrec.routing.networks` — the torch classifiers' networks and training loop.
* :mod:`mtrec.routing.mapping` — :class:`RuleTaskMapper`, :class:`LearnedTaskMapper`.

Scenario ids outside ``0..S-1`` raise ``ValueError`` (no silent fallback): a new scenario needs
retraining or an explicit mapping onto a known one.
"""

from mtrec.routing.classifier import CLASSIFIER_KINDS, ScenarioClassifier
from mtrec.routing.mapping import LearnedTaskMapper, RuleTaskMapper

__all__ = ["CLASSIFIER_KINDS", "LearnedTaskMapper", "RuleTaskMapper", "ScenarioClassifier"]
