"""Notebook 05's runners: scenario classifiers side by side, multi-scenario models, routing drop.

* :func:`compare_classifiers` fits every :class:`~mtrec.routing.ScenarioClassifier` kind on the
  same training reviews (TF-IDF kinds also on more of them) and scores all on the same test
  reviews: accuracy, macro-F1 and the seconds each fit + predict took.
* :func:`train_scenario_models` trains the multi-scenario models of the benchmark
  (:mod:`mtrec.experiments.multiscenario`, same code and features) for a few seeds and keeps the
  trained models for :func:`routing_drop`, which scores them with predicted scenario ids.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from mtrec.experiments.multiscenario import Prepared, mean_auc, train_and_score
from mtrec.routing import ScenarioClassifier

# TF-IDF of the review text: the 20,000 most frequent word unigrams and bigrams that occur in at
# least 2 training reviews; sublinear tf (1 + log count) so that a word repeated in one long
# review does not outweigh the others.
TFIDF_OPTIONS: dict[str, Any] = dict(
    max_features=20000, ngram_range=(1, 2), min_df=2, sublinear_tf=True
)
TREE_MAX_DEPTH = 20  # deep enough for 6 departments' word rules; bounded so a fit takes seconds
NEURAL_EPOCHS = 8  # epochs of the bag-of-embeddings net on TF-IDF (it converges by then)
LM_EPOCHS = 60  # epochs of the linear head on frozen MiniLM vectors (1,000 rows: cheap)
LEARNING_RATE = 1e-2  # Adam, for both trained heads
KINDS = ("tree", "svm", "neural", "lm")


def tfidf_features(train_docs: Sequence[str], test_docs: Sequence[str]) -> tuple[Any, Any, Any]:
    """(vectorizer fitted on ``train_docs``, train matrix, test matrix) with :data:`TFIDF_OPTIONS`."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(dtype=np.float32, **TFIDF_OPTIONS).fit(train_docs)
    return vectorizer, vectorizer.transform(train_docs), vectorizer.transform(test_docs)


def compare_classifiers(
    train_docs: Sequence[str],
    train_labels: Sequence[str],
    test_docs: Sequence[str],
    test_labels: Sequence[str],
    *,
    sizes: Sequence[int],
    lm_size: int,
    encoder: Any = None,
    kinds: Sequence[str] = KINDS,
    seed: int = 0,
) -> tuple[pd.DataFrame, dict[tuple[str, int], ScenarioClassifier], Any]:
    """Every classifier kind × training size, scored on the same test reviews.

    TF-IDF kinds (tree, svm, neural) train on the first ``n`` reviews for each ``n`` in
    ``sizes``; the language-model kind (``lm``, MiniLM vectors from ``encoder``) only on the
    first ``lm_size``. Returns (scores: classifier, train_reviews, accuracy, macro_f1, seconds;
    the fitted classifiers by (kind, n); the TF-IDF vectorizer fitted on all ``train_docs``).
    """
    from sklearn.metrics import accuracy_score, f1_score

    train_docs, test_docs = list(train_docs), list(test_docs)
    train_labels = list(train_labels)
    vectorizer, x_train, x_test = tfidf_features(train_docs, test_docs)
    rows, fitted = [], {}
    for kind in kinds:
        for n in [lm_size] if kind == "lm" else sizes:
            start = time.perf_counter()
            clf = ScenarioClassifier(kind, encoder=encoder, lr=LEARNING_RATE, seed=seed,
                                     epochs=LM_EPOCHS if kind == "lm" else NEURAL_EPOCHS,
                                     max_depth=TREE_MAX_DEPTH)  # fmt: skip
            clf.fit(train_docs[:n] if kind == "lm" else x_train[:n], train_labels[:n])
            pred = clf.predict(test_docs if kind == "lm" else x_test)
            fitted[kind, n] = clf
            rows.append({"classifier": kind, "train_reviews": n,
                         "accuracy": accuracy_score(test_labels, pred),
                         "macro_f1": f1_score(test_labels, pred, average="macro"),
                         "seconds": time.perf_counter() - start})  # fmt: skip
    return pd.DataFrame(rows), fitted, vectorizer


def train_scenario_models(
    data: Prepared, names: Sequence[str], seeds: Sequence[int]
) -> tuple[pd.DataFrame, dict[tuple[str, int], nn.Module]]:
    """Each model × seed trained as the benchmark does; (per-seed test metrics, trained models).

    ``per_scenario`` (one model per scenario) has metrics but no single model to keep.
    """
    frames, trained = [], {}
    for seed in seeds:
        for name in names:
            metrics, model = train_and_score(name, data, seed)
            frames.append(metrics)
            if model is not None:
                trained[name, seed] = model
    return pd.concat(frames, ignore_index=True), trained


def routing_drop(
    trained: dict[tuple[str, int], nn.Module], test: dict[str, torch.Tensor], predicted: Any
) -> pd.DataFrame:
    """Mean test AUC (over tasks) of each trained model with the true and the predicted scenarios.

    Args:
        trained: (model name, seed) → model reading ``scenario_ids``.
        test: the test tensors (their ``scenario_ids`` are the true ones).
        predicted: (N,) predicted scenario ids for the same rows.

    Returns:
        One row per (model, seed): true_scenarios, predicted_scenarios, drop (true − predicted).
    """
    predicted = torch.from_numpy(np.array(predicted, dtype=np.int64))  # a copy: writable
    if predicted.shape != test["scenario_ids"].shape:
        raise ValueError(
            f"predicted scenario ids have shape {tuple(predicted.shape)}, expected one per test "
            f"row {tuple(test['scenario_ids'].shape)}; predict the same rows, in order"
        )
    swapped = {**test, "scenario_ids": predicted}
    rows = [(name, seed, mean_auc(model, test), mean_auc(model, swapped))
            for (name, seed), model in trained.items()]  # fmt: skip
    frame = pd.DataFrame(rows, columns=["model", "seed", "true_scenarios", "predicted_scenarios"])
    return frame.assign(drop=frame.true_scenarios - frame.predicted_scenarios)
