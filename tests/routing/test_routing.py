import numpy as np
import pytest
import torch
from scipy import sparse

from mtrec.data import TensorBatcher
from mtrec.data.schema import SparseFeature
from mtrec.nn.scenario import ScenarioRouter, check_scenario_ids
from mtrec.routing import LearnedTaskMapper, RuleTaskMapper, ScenarioClassifier
from mtrec.train import fit

pytestmark = pytest.mark.usefixtures("one_thread")

WORDS = {
    "dress": "lovely dress flowy skirt summer wedding",
    "jacket": "warm jacket coat zipper winter hood",
    "top": "cute top blouse sleeves shirt tee",
}


def toy_texts(n: int = 150, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    labels = [list(WORDS)[i % 3] for i in range(n)]
    texts = [" ".join(rng.choice(WORDS[y].split(), 4)) + " fits great" for y in labels]
    return texts, labels


class FakeEncoder:
    """Stands in for TextEncoder: a fixed random vector per word, averaged and L2-normalised."""

    def __init__(self, dim: int = 16) -> None:
        self.dim, self.table = dim, {}
        self.generator = torch.Generator().manual_seed(0)

    def encode(self, texts, batch_size: int = 64) -> torch.Tensor:
        rows = []
        for text in texts:
            vecs = [self.table.setdefault(w, torch.randn(self.dim, generator=self.generator))
                    for w in text.split()]  # fmt: skip
            rows.append(torch.stack(vecs).mean(0))
        return torch.nn.functional.normalize(torch.stack(rows), dim=-1)


def test_router_equals_each_scenarios_tower_on_its_own_rows():
    torch.manual_seed(0)
    router = ScenarioRouter(5, 6, (8, 4), 3)
    x, ids = torch.randn(50, 6), torch.randint(0, 5, (50,))
    out = router(x, ids)
    assert out.shape == (50, 3)
    for s in range(5):
        rows = ids == s
        torch.testing.assert_close(out[rows], router.tower(s)(x[rows]))


def test_router_gradients_reach_only_the_used_scenarios():
    router = ScenarioRouter(4, 3, (5,), 1)
    router(torch.randn(8, 3), torch.tensor([0, 2] * 4)).sum().backward()
    used = router.weights[0].grad.abs().sum(dim=(1, 2))
    assert used[0] > 0 and used[2] > 0 and used[1] == 0 and used[3] == 0


@pytest.mark.parametrize("bad", [[0, 3], [-1, 0]])
def test_out_of_range_scenario_is_a_clear_error(bad):
    with pytest.raises(ValueError, match=r"outside the trained range 0\.\.2"):
        check_scenario_ids(torch.tensor(bad), 3)
    with pytest.raises(ValueError, match="outside the trained range"):
        ScenarioRouter(3, 2, (), 1)(torch.randn(2, 2), torch.tensor(bad))
    with pytest.raises(ValueError, match=r"must be \(B,\)"):
        check_scenario_ids(torch.zeros(2, 2), 3)


def test_rule_task_mapper():
    mapper = RuleTaskMapper(
        {"a": ["click"], "b": ["click", "buy"]}, scenarios=["a", "b"], tasks=["click", "buy"]
    )
    mask = mapper.mask(torch.tensor([0, 1, 1]))
    assert mask.tolist() == [[True, False], [True, True], [True, True]]
    labels = mapper.apply(torch.ones(3, 2), torch.tensor([0, 1, 0]))
    assert torch.isnan(labels[0, 1]) and torch.isnan(labels[2, 1]) and labels[1, 1] == 1
    with pytest.raises(ValueError, match="outside the trained range"):
        mapper.mask(torch.tensor([2]))
    with pytest.raises(ValueError, match="unknown tasks"):
        RuleTaskMapper({"a": ["view"], "b": []}, scenarios=["a", "b"], tasks=["click"])
    with pytest.raises(ValueError, match="scenarios without a row"):
        RuleTaskMapper({"a": ["click"]}, scenarios=["a", "b"], tasks=["click"])


def test_learned_task_mapper_learns_the_rule_table():
    torch.manual_seed(0)
    rule = RuleTaskMapper(
        {"a": ["click"], "b": ["click", "buy"], "c": ["buy"]},
        scenarios=["a", "b", "c"],
        tasks=["click", "buy"],
    )
    ids = torch.randint(0, 3, (600,))
    data = {"page": ids + 1, "labels": rule.mask(ids).float()}
    gate = LearnedTaskMapper([SparseFeature("page", 4, 4)], 2)
    fit(gate, TensorBatcher(data, 200, shuffle=True), epochs=25, lr=5e-2, progress=False)
    assert gate.predict(data).shape == (600, 2)
    assert bool((gate.mask(data) == rule.mask(ids)).all())


@pytest.mark.parametrize("kind", ["tree", "svm", "neural", "lm"])
def test_classifiers_learn_toy_scenarios_from_text(kind):
    texts, labels = toy_texts()
    clf = ScenarioClassifier(kind, encoder=FakeEncoder(), epochs=30, lr=1e-2, seed=0)
    with pytest.raises(RuntimeError, match="not fitted"):
        clf.predict(texts)
    test_texts, test_labels = toy_texts(60, seed=1)
    clf.fit(texts, labels)
    accuracy = (clf.predict(test_texts) == np.array(test_labels)).mean()
    assert accuracy > 0.9, accuracy
    proba = clf.predict_proba(test_texts)
    assert proba.shape == (60, 3)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)


def test_svm_matches_scikit_learn_linear_svc():
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.svm import LinearSVC

    texts, labels = toy_texts()
    test_texts, _ = toy_texts(60, seed=1)
    ours = ScenarioClassifier("svm").fit(texts, labels).predict(test_texts)
    vec = TfidfVectorizer(max_features=20000, ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    ref = LinearSVC(C=0.5, random_state=0).fit(vec.fit_transform(texts), labels)
    np.testing.assert_array_equal(ours, ref.predict(vec.transform(test_texts)))


@pytest.mark.parametrize("kind", ["tree", "svm", "neural"])
def test_classifiers_on_tabular_features(kind):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    centres = np.array([[3.0, 0, 0, 0], [0, 3.0, 0, 0], [0, 0, 3.0, 0]])
    x = (centres[y] + rng.normal(size=(300, 4))).astype(np.float32)  # three separated blobs
    clf = ScenarioClassifier(kind, epochs=40, lr=1e-2, max_depth=4).fit(x[:200], y[:200])
    assert (clf.predict(x[200:]) == y[200:]).mean() > 0.9


def test_classifier_bad_input():
    with pytest.raises(ValueError, match="kind must be one of"):
        ScenarioClassifier("forest")
    with pytest.raises(ValueError, match="kind='lm' embeds texts"):
        ScenarioClassifier("lm", encoder=FakeEncoder()).fit(
            sparse.csr_matrix(np.eye(4)), [0, 1] * 2
        )
    with pytest.raises(TypeError, match="single string"):
        ScenarioClassifier("svm").fit("one text", [0])
    with pytest.raises(ValueError, match="inputs but"):
        ScenarioClassifier("tree").fit(np.zeros((4, 2)), [0, 1])


@pytest.mark.slow
def test_lm_classifier_with_the_real_text_encoder(tmp_path):
    from mtrec.extractors.text import TextEncoder

    texts, labels = toy_texts(60)
    clf = ScenarioClassifier("lm", encoder=TextEncoder(cache_dir=tmp_path), epochs=40, lr=1e-2)
    clf.fit(texts, labels)
    assert (clf.predict(texts) == np.array(labels)).mean() > 0.9


def test_precomputed_sparse_features_give_the_same_svm():
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts, labels = toy_texts()
    vec = TfidfVectorizer(max_features=20000, ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    matrix = vec.fit_transform(texts)
    from_text = ScenarioClassifier("svm").fit(texts, labels).predict(texts)
    np.testing.assert_array_equal(ScenarioClassifier("svm").fit(matrix, labels).predict(matrix),
                                  from_text)  # fmt: skip
    neural = ScenarioClassifier("neural", epochs=30, lr=1e-2).fit(matrix, labels)
    assert (neural.predict(matrix) == np.array(labels)).mean() > 0.9


def test_grouped_matmul_equals_per_row_weights_and_their_gradients():
    from mtrec.nn.scenario import grouped_matmul

    g = torch.Generator().manual_seed(0)
    x = torch.randn(37, 5, generator=g, requires_grad=True)
    w = torch.randn(6, 5, 3, generator=g, requires_grad=True)
    ids = torch.tensor([4, 4, 0, 2, 4] * 7 + [5, 4])  # skewed, scenarios 1 and 3 absent
    ours = grouped_matmul(x, ids, w.__getitem__)
    reference = torch.bmm(x.unsqueeze(1), w[ids]).squeeze(1)
    torch.testing.assert_close(ours, reference)
    (grad_x, grad_w) = torch.autograd.grad(ours.square().sum(), (x, w))
    (ref_x, ref_w) = torch.autograd.grad(reference.square().sum(), (x, w))
    torch.testing.assert_close(grad_x, ref_x)
    torch.testing.assert_close(grad_w, ref_w)
    assert grad_w[[1, 3]].abs().sum() == 0  # absent scenarios get no gradient


def test_lm_on_precomputed_embeddings_equals_lm_on_texts():
    texts, labels = toy_texts()
    test_texts, _ = toy_texts(60, seed=1)
    encoder = FakeEncoder()
    on_texts = ScenarioClassifier("lm", encoder=encoder, epochs=5).fit(texts, labels)
    on_vectors = ScenarioClassifier("lm", epochs=5).fit(encoder.encode(texts).numpy(), labels)
    vectors = encoder.encode(test_texts)
    np.testing.assert_array_equal(on_texts.predict_proba(test_texts),
                                  on_vectors.predict_proba(vectors))  # fmt: skip
    with pytest.raises(
        ValueError, match="inputs have 3 columns but this classifier was fitted on 16"
    ):
        on_texts.predict(np.zeros((2, 3)))


def fitted(kind: str, inputs: str) -> tuple[ScenarioClassifier, object, object]:
    """A fitted classifier, its training inputs and held-out inputs of the given form."""
    texts, labels = toy_texts()
    test_texts, _ = toy_texts(60, seed=1)
    if inputs == "tabular":
        rng = np.random.default_rng(0)
        y = rng.integers(0, 3, 260)
        x = (np.eye(4)[y] * 3 + rng.normal(size=(260, 4))).astype(np.float32)
        train, test, labels = x[:200], x[200:], y[:200]
    elif inputs == "tfidf":
        from sklearn.feature_extraction.text import TfidfVectorizer

        vec = TfidfVectorizer(min_df=2).fit(texts)
        train, test = vec.transform(texts), vec.transform(test_texts)
    else:
        train, test = texts, test_texts
    clf = ScenarioClassifier(kind, encoder=FakeEncoder(), head="mlp", epochs=5, seed=0)
    return clf.fit(train, labels), train, test


@pytest.mark.parametrize(("kind", "inputs"),
                         [("neural", "tabular"), ("neural", "tfidf"), ("lm", "texts")])  # fmt: skip
def test_state_dict_round_trip_gives_identical_predictions(kind, inputs, tmp_path):
    from safetensors.torch import load_file, save_file

    clf, _, test = fitted(kind, inputs)
    save_file(clf.state_dict(), tmp_path / "router.safetensors")  # tensors only, no pickle
    again = ScenarioClassifier(kind, encoder=clf.encoder, head="mlp")
    again.load_state_dict(load_file(tmp_path / "router.safetensors"), classes=clf.classes_.tolist())
    np.testing.assert_array_equal(again.predict_proba(test), clf.predict_proba(test))
    np.testing.assert_array_equal(again.predict(test), clf.predict(test))


@pytest.mark.parametrize(("kind", "inputs", "message"), [
    ("tree", "texts", "kind='tree' is a scikit-learn model"),
    ("svm", "tabular", "kind='svm' is a scikit-learn model"),
    ("neural", "texts", "TF-IDF vocabulary is not a tensor"),
])  # fmt: skip
def test_state_dict_explains_what_it_cannot_save(kind, inputs, message):
    clf, _, _ = fitted(kind, inputs)
    with pytest.raises(ValueError, match=message):
        clf.state_dict()
    with pytest.raises(RuntimeError, match="not fitted"):
        ScenarioClassifier("lm").state_dict()


def test_load_state_dict_rejects_a_mismatched_network():
    clf, _, _ = fitted("lm", "texts")
    state = clf.state_dict()
    with pytest.raises(
        ValueError, match="(?s)does not fit ScenarioClassifier.*settings it was fitted"
    ):
        ScenarioClassifier("lm", head="linear").load_state_dict(state, classes=clf.classes_)
    with pytest.raises(ValueError, match="not a ScenarioClassifier state"):
        ScenarioClassifier("lm").load_state_dict({"w": torch.zeros(2)}, classes=clf.classes_)
