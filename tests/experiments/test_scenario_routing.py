"""Notebook 05's runners: classifiers side by side, scenario models, the routing drop."""

import pytest
import torch

from mtrec.data.synthetic import random_batch, tiny_features
from mtrec.experiments.multiscenario import Prepared
from mtrec.experiments.scenario_routing import (
    TREE_MAX_DEPTH,
    compare_classifiers,
    routing_drop,
    train_scenario_models,
)

WORDS = {
    "dress": "dress hem waist skirt",
    "jeans": "jeans denim leg pocket",
    "bra": "bra cup strap",
}


def _reviews(n: int, offset: int = 0) -> tuple[list[str], list[str]]:
    labels = [list(WORDS)[(i + offset) % 3] for i in range(n)]
    texts = [f"{WORDS[label]} lovely review number {i}" for i, label in enumerate(labels)]
    return texts, labels


def test_classifiers_are_scored_on_the_same_test_reviews():
    train_docs, train_labels = _reviews(60)
    test_docs, test_labels = _reviews(15, offset=1)
    scores, fitted, vectorizer = compare_classifiers(
        train_docs, train_labels, test_docs, test_labels, sizes=[30, 60], lm_size=30,
        kinds=("tree", "svm"))  # fmt: skip
    assert list(zip(scores.classifier, scores.train_reviews)) == [
        ("tree", 30), ("tree", 60), ("svm", 30), ("svm", 60)]  # fmt: skip
    assert scores.accuracy.between(0.99, 1.0).all()  # department words separate perfectly
    assert (scores.seconds > 0).all() and set(fitted) == {("tree", 30), ("tree", 60),
                                                          ("svm", 30), ("svm", 60)}  # fmt: skip
    assert vectorizer.transform(test_docs).shape[0] == 15 and TREE_MAX_DEPTH == 20


def _tiny() -> Prepared:
    def part(seed: int) -> dict:
        batch = random_batch(tiny_features(), 96, num_tasks=1, num_scenarios=2, seed=seed)
        batch["labels"] = ((batch["user"] + batch["scenario_ids"]) % 2).float().unsqueeze(1)
        return batch

    return Prepared("tiny", tiny_features(), ("y",), ("a", "b"), part(0), part(1), part(2),
                    batch_size=32, lr=1e-2, max_epochs=1, patience=1)  # fmt: skip


@pytest.mark.usefixtures("one_thread")
def test_routing_drop_is_zero_with_the_true_ids_and_checks_their_shape():
    data = _tiny()
    results, trained = train_scenario_models(data, ["star", "per_scenario"], seeds=[0])
    assert set(results.model) == {"star", "per_scenario"} and list(trained) == [("star", 0)]
    same = routing_drop(trained, data.test, data.test["scenario_ids"].numpy())
    assert same["drop"].abs().max() == 0.0
    flipped = routing_drop(trained, data.test, (1 - data.test["scenario_ids"]).numpy())
    assert flipped["drop"].notna().all() and len(flipped) == 1
    with pytest.raises(ValueError, match="one per test row"):
        routing_drop(trained, data.test, torch.zeros(3, dtype=torch.long).numpy())
