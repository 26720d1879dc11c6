"""Exercise 6: a scenario classifier that beats the decision-tree baseline on real reviews.

The student writes ``fit_predict(train_texts, train_labels, test_texts) -> predicted labels``.
The check trains it on 4,000 Women's Clothing E-Commerce reviews (title + text) to predict the
department (the scenario: Bottoms, Dresses, Intimate, Jackets, Tops, Trend) and scores it on
1,500 held-out reviews, against :class:`mtrec.routing.ScenarioClassifier` ``kind="tree"``
(TF-IDF + a depth-30 decision tree) trained on the same rows. It passes when both accuracy and
macro-F1 beat the tree's. The split is seeded, so every student sees the same rows; students get
the training rows and the test *texts* only (:func:`training_data`): the test departments stay
inside the checker.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import lru_cache, partial

import numpy as np

from mtrec.exercises._harness import CaseResult, current_record
from mtrec.exercises._limits import call_with_time_limit, student_error

NUM_TRAIN, NUM_TEST, SEED = 4000, 1500, 0
TIME_LIMIT_S = 300.0  # a TF-IDF + linear model takes seconds; this only stops endless loops


def training_data() -> tuple[list[str], np.ndarray, list[str]]:
    """What a student may look at: (train texts, train departments, test texts)."""
    train_x, train_y, test_x, _ = _split()
    return list(train_x), train_y.copy(), list(test_x)


@lru_cache(maxsize=1)
def _split() -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    """(train texts, train departments, test texts, test departments), seeded."""
    from mtrec.data import clothing_multitask

    frame = clothing_multitask()
    texts = (frame["title"] + ". " + frame["text"]).str.strip(". ")
    keep = np.flatnonzero(texts.str.len().to_numpy() > 0)
    order = np.random.default_rng(SEED).permutation(keep)
    train, test = order[:NUM_TRAIN], order[NUM_TRAIN : NUM_TRAIN + NUM_TEST]
    labels = frame["scenario"].to_numpy().astype(str)
    return texts.iloc[train].tolist(), labels[train], texts.iloc[test].tolist(), labels[test]


@lru_cache(maxsize=1)
def baseline() -> tuple[float, float, np.ndarray]:
    """Accuracy, macro-F1 and predictions of the decision-tree baseline on the test rows."""
    from sklearn.metrics import accuracy_score, f1_score  # imported when used: ~1 s to import

    from mtrec.routing import ScenarioClassifier

    train_x, train_y, test_x, test_y = _split()
    tree = ScenarioClassifier("tree", seed=SEED).fit(train_x, train_y)
    predicted = tree.predict(test_x)
    return (
        accuracy_score(test_y, predicted),
        f1_score(test_y, predicted, average="macro"),
        predicted,
    )


def majority_class(train_texts: Sequence[str], train_labels: np.ndarray, test_texts: Sequence[str]):
    """A known weak answer (every review gets the most common department), for the example."""
    values, counts = np.unique(train_labels, return_counts=True)
    return [values[counts.argmax()]] * len(test_texts)


def _per_class_recall(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    return {c: float((predicted[truth == c] == c).mean()) for c in np.unique(truth)}


CASE_NAME = f"beats the decision tree on {NUM_TEST:,} held-out reviews"  # the check's one case


def check_scenario_classifier(student: Callable[..., Sequence[str]]) -> bool:
    """Check ``student(train_texts, train_labels, test_texts) -> labels``; True if it beats the tree."""
    if not callable(student):
        print("pass your function itself, e.g. check_scenario_classifier(fit_predict)")
        return False
    record = current_record()
    if record is not None:
        record.start("a scenario classifier against a decision tree", 1)
    message, advice = _check(student)
    if record is not None:
        record.add(CaseResult(1, CASE_NAME, message is None, message or "", advice))
    return message is None


def _check(student: Callable[..., Sequence[str]]) -> tuple[str | None, str]:
    """Print the check's feedback; return (None, "") when it passes, else (why, hint)."""
    from sklearn.metrics import accuracy_score, f1_score

    train_x, train_y, test_x, test_y = _split()
    print(f"Training your classifier on {len(train_x)} reviews, testing on {len(test_x)}")
    start = time.perf_counter()
    arguments = {
        "train_texts": list(train_x),
        "train_labels": train_y.copy(),
        "test_texts": list(test_x),
    }
    try:
        predicted = call_with_time_limit(partial(student, *arguments.values()), {}, TIME_LIMIT_S)
    except BaseException as error:
        message = student_error(error, TIME_LIMIT_S)
        if message is None:
            raise
        print(f"  {message}")
        return message, ""
    seconds = time.perf_counter() - start
    if predicted is None:
        message = "your function returned None - did you forget the `return` statement?"
        print(f"  FAILED - {message}")
        return message, ""
    try:
        predicted = np.asarray(predicted).astype(str).ravel()
    except Exception as error:  # an object NumPy cannot turn into labels
        message = (f"could not read the predictions ({type(error).__name__}: {error}); "
                   "return a list or array of department names")  # fmt: skip
        print(f"  FAILED - {message}")
        return message, ""
    if predicted.shape != test_y.shape:
        message = (f"expected {len(test_y)} predicted labels (one per test text), "
                   f"got {predicted.shape[0]}")  # fmt: skip
        print(f"  FAILED - {message}")
        return message, ""
    unknown = sorted(set(predicted) - set(train_y))
    if unknown:
        message = (f"predicted labels {unknown[:3]} are not departments; return labels "
                   f"from train_labels, e.g. {sorted(set(train_y))}")  # fmt: skip
        print(f"  FAILED - {message}")
        return message, ""
    accuracy = accuracy_score(test_y, predicted)
    macro_f1 = f1_score(test_y, predicted, average="macro")
    base_accuracy, base_f1, base_predicted = baseline()
    print(f"  yours:         accuracy {accuracy:.3f}  macro-F1 {macro_f1:.3f}  ({seconds:.1f} s)")
    print(f"  decision tree: accuracy {base_accuracy:.3f}  macro-F1 {base_f1:.3f}")
    if accuracy > base_accuracy and macro_f1 > base_f1:
        print("You beat the decision-tree baseline on both. Well done!")
        return None, ""
    ours, theirs = _per_class_recall(test_y, predicted), _per_class_recall(test_y, base_predicted)
    print("  recall per department (yours vs tree): " + ", ".join(
        f"{c} {ours[c]:.2f}/{theirs[c]:.2f}" for c in ours))  # fmt: skip
    message = "not better than the tree on both accuracy and macro-F1"
    hint = (
        "a linear model on TF-IDF word and bigram features (sklearn TfidfVectorizer + "
        "LinearSVC or LogisticRegression) generalises better than one deep tree; macro-F1 "
        "also counts the small departments (Trend, Jackets): try class_weight='balanced'."
    )
    print(f"  FAILED - {message}.")
    print(f"  hint: {hint}")
    scores = (
        f"accuracy {accuracy:.3f} vs {base_accuracy:.3f}, macro-F1 {macro_f1:.3f} vs {base_f1:.3f}"
    )
    return f"{message} ({scores})", f"hint: {hint}"
