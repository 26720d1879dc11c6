"""Scenario classification: which scenario is this request in? Four kinds behind one API.

user input → features → :class:`ScenarioClassifier` → task mapping (:mod:`mtrec.routing.mapping`)
→ the scenario and task models. The blocks that send each row to its scenario's parameters
(``ScenarioRouter``, ``StarLinear``, ``grouped_matmul``) live in :mod:`mtrec.nn.scenario`.

A fitted torch classifier (``"neural"``, ``"lm"``) saves as plain tensors with
:meth:`ScenarioClassifier.state_dict`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from mtrec.nn.layers import MLP
from mtrec.routing.networks import BagOfWords, rows_tensor, train_network
from mtrec.utils import get_device, set_seed

CLASSIFIER_KINDS = ("tree", "svm", "neural", "lm")


class ScenarioClassifier:
    """Predict a request's scenario from text or tabular features, four ways behind one API.

    Kinds:
        ``"tree"``: scikit-learn DecisionTreeClassifier on TF-IDF (text) or the raw columns.
        ``"svm"``: scikit-learn LinearSVC on TF-IDF (text) or standardised columns.
        ``"neural"``: a small torch network: TF-IDF-weighted bag of word embeddings (text, like
            fastText) or an MLP (tabular), trained with Adam.
        ``"lm"``: pretrained language-model sentence embeddings
            (:class:`mtrec.extractors.text.TextEncoder`, pass ``encoder=``) + a linear or MLP head.

    ``fit(inputs, scenarios)`` takes a list of strings, an (N, F) array, or a precomputed scipy
    sparse matrix (e.g. one TF-IDF shared by several classifiers), and any hashable labels;
    ``kind="lm"`` takes texts or their precomputed (N, D) sentence embeddings. ``predict``
    returns labels of the same kind, ``predict_proba`` (N, S) in ``classes_`` order. Calling
    either before ``fit`` raises RuntimeError. The torch kinds save and load their fitted state
    as tensors (:meth:`state_dict`, :meth:`load_state_dict`).
    """

    def __init__(
        self,
        kind: str = "svm",
        *,
        encoder: Any = None,
        head: str = "linear",
        hidden: Sequence[int] = (64,),
        epochs: int = 20,
        lr: float = 3e-3,
        batch_size: int = 256,
        embed_dim: int = 32,
        max_features: int = 20000,
        max_depth: int | None = 30,
        seed: int = 0,
        device: str | torch.device | None = None,
    ) -> None:
        if kind not in CLASSIFIER_KINDS:
            raise ValueError(f"kind must be one of {CLASSIFIER_KINDS}, got {kind!r}")
        if head not in ("linear", "mlp"):
            raise ValueError(f"head must be 'linear' or 'mlp', got {head!r}")
        self.kind, self.encoder, self.head = kind, encoder, head
        self.hidden, self.epochs, self.lr, self.batch_size = tuple(hidden), epochs, lr, batch_size
        self.embed_dim, self.max_features, self.max_depth = embed_dim, max_features, max_depth
        self.seed, self.device = seed, get_device(device)
        self.classes_: np.ndarray | None = None
        self._vectorizer: Any = None
        self._scaler: Any = None
        self._model: Any = None
        self._width: int | None = None  # number of input columns seen by fit (arrays, sparse)

    def __repr__(self) -> str:
        state = "fitted" if self.classes_ is not None else "not fitted"
        return f"ScenarioClassifier(kind={self.kind!r}, head={self.head!r}, {state})"

    # ------------------------------------------------------------------ inputs
    def _is_text(self, inputs: Any) -> bool:
        if isinstance(inputs, str):
            raise TypeError("pass a list of texts, not a single string: [text]")
        if inputs is None or not hasattr(inputs, "__iter__"):
            raise TypeError(
                f"inputs must be a list of texts or an (N, F) array, got {type(inputs).__name__}"
            )
        return not isinstance(inputs, (np.ndarray, Tensor)) and isinstance(
            next(iter(inputs), ""), str
        )

    def _features(self, inputs: Any, *, fit: bool) -> Any:
        """Texts → TF-IDF (sparse) or LM embeddings; sparse matrices as given; arrays → (N, F)."""
        if _is_sparse(inputs):
            if self.kind == "lm":
                raise ValueError(
                    "kind='lm' embeds texts: pass a list of strings or their (N, D) sentence "
                    "embeddings, not a sparse matrix"
                )
            return self._checked_width(inputs.tocsr().astype(np.float32), fit=fit)
        if self._is_text(inputs):
            texts = [str(t) for t in inputs]
            if self.kind == "lm":
                if self.encoder is None:
                    from mtrec.extractors.text import TextEncoder

                    self.encoder = TextEncoder()
                return self._checked_width(self.encoder.encode(texts).numpy(), fit=fit)
            if fit:
                from sklearn.feature_extraction.text import TfidfVectorizer

                self._vectorizer = TfidfVectorizer(
                    max_features=self.max_features, ngram_range=(1, 2), min_df=2, sublinear_tf=True
                )
                try:
                    return self._vectorizer.fit_transform(texts)
                except ValueError as err:  # sklearn: empty vocabulary / no terms remain
                    raise ValueError(
                        f"the {len(texts)} training texts yield no TF-IDF term ({err}); a term "
                        "must occur in at least 2 texts: pass more (or longer) texts"
                    ) from None
            if self._vectorizer is None:
                raise TypeError(
                    "this classifier was fitted on an array or matrix, not texts; pass "
                    "features built the same way as the training ones"
                )
            return self._vectorizer.transform(texts)
        if not fit and self._vectorizer is not None:
            raise TypeError("this classifier was fitted on texts; pass a list of strings")
        try:
            array = np.asarray(inputs, dtype=np.float32)
        except (TypeError, ValueError):
            raise TypeError(
                f"tabular inputs must be numbers of shape (N, F), got {type(inputs).__name__}"
            ) from None
        if not np.isfinite(array).all():
            raise ValueError(
                f"tabular inputs contain {int((~np.isfinite(array)).sum())} NaN or infinite "
                "values; impute them (e.g. fillna with the training mean) before classifying"
            )
        if array.ndim != 2:
            raise ValueError(f"tabular inputs must be (N, F), got shape {array.shape}")
        array = self._checked_width(array, fit=fit)
        if self.kind == "lm":  # precomputed sentence embeddings: used as they are
            return array
        if fit:
            from sklearn.preprocessing import StandardScaler

            self._scaler = StandardScaler().fit(array)
        return self._scaler.transform(array).astype(np.float32)

    def _checked_width(self, x: Any, *, fit: bool) -> Any:
        if fit:
            self._width = x.shape[1]
        elif self._width is not None and x.shape[1] != self._width:
            raise ValueError(
                f"inputs have {x.shape[1]} columns but this classifier was fitted on "
                f"{self._width}; pass features built the same way as the training ones"
            )
        return x

    # ------------------------------------------------------------------ fit / predict
    def fit(self, inputs: Any, scenarios: Sequence[Any]) -> ScenarioClassifier:
        """Learn to map ``inputs`` (N texts or an (N, F) array) to ``scenarios`` (N labels).

        Raises ``ValueError`` on no rows, fewer than two distinct scenarios (nothing to tell
        apart) or a different number of inputs and labels.
        """
        if isinstance(scenarios, (str, bytes)):
            raise TypeError("scenarios must be one label per input, not a single string")
        if _rows(inputs) == 0:
            raise ValueError("inputs are empty; pass at least one training row per scenario")
        y_raw = np.asarray(scenarios)
        if y_raw.ndim != 1 or len(y_raw) != _rows(inputs):
            raise ValueError(
                f"{_rows(inputs)} inputs but scenario labels of shape {y_raw.shape}; pass one "
                "label per input"
            )
        try:
            classes, y = np.unique(y_raw, return_inverse=True)
        except TypeError:
            raise TypeError(
                "scenario labels must be of one comparable kind (all str or all int), got "
                f"{sorted({type(v).__name__ for v in y_raw.tolist()})}"
            ) from None
        if len(classes) < 2:
            raise ValueError(
                f"scenario labels hold {len(classes)} distinct scenario(s) {classes.tolist()}; "
                "a classifier needs rows of at least two scenarios to tell them apart"
            )
        self.classes_ = classes
        x = self._features(inputs, fit=True)
        if x.shape[0] != len(y):
            raise ValueError(f"{x.shape[0]} inputs but {len(y)} scenario labels")
        if self.kind == "tree":
            from sklearn.tree import DecisionTreeClassifier

            self._model = DecisionTreeClassifier(max_depth=self.max_depth, random_state=self.seed)
            self._model.fit(x, y)
        elif self.kind == "svm":
            from sklearn.svm import LinearSVC

            self._model = LinearSVC(C=0.5, random_state=self.seed).fit(x, y)
        else:
            self._model = self._fit_torch(x, y)
        return self

    def _net(self, width: int, num_classes: int, *, bag: bool) -> nn.Module:
        if bag:  # TF-IDF bag of words
            return BagOfWords(width, self.embed_dim, self.hidden, num_classes)
        hidden = self.hidden if (self.kind == "neural" or self.head == "mlp") else ()
        return MLP(width, hidden, num_classes, dropout=0.1 if hidden else 0.0)

    def _fit_torch(self, x: Any, y: np.ndarray) -> nn.Module:
        set_seed(self.seed)
        bag = self.kind == "neural" and not isinstance(x, np.ndarray)
        net = self._net(x.shape[1], len(self.classes_), bag=bag).to(self.device)
        return train_network(net, x, y, epochs=self.epochs, lr=self.lr,
                             batch_size=self.batch_size, seed=self.seed, device=self.device)  # fmt: skip

    def _tensor(self, x: Any, rows: np.ndarray | None = None) -> Any:
        return rows_tensor(x, rows, self.device)

    def _check_fitted(self) -> None:
        if self.classes_ is None:
            raise RuntimeError(
                f"this ScenarioClassifier(kind={self.kind!r}) is not fitted yet; call "
                "fit(inputs, scenarios) on training rows before predict"
            )

    def predict_proba(self, inputs: Any) -> np.ndarray:
        """(N, S) scenario probabilities (tree: leaf frequencies; svm: softmax of margins).

        No rows (``[]`` or a (0, F) array) give an empty (0, S) result.
        """
        self._check_fitted()
        if isinstance(inputs, str):
            raise TypeError("pass a list of texts, not a single string: [text]")
        if _rows(inputs) == 0:
            return np.zeros((0, len(self.classes_)), dtype=np.float32)
        x = self._features(inputs, fit=False)
        if self.kind == "tree":
            return self._model.predict_proba(x)
        if self.kind == "svm":
            scores = torch.as_tensor(self._model.decision_function(x), dtype=torch.float32)
            return torch.softmax(scores if scores.ndim == 2 else torch.stack(
                [-scores, scores], dim=1), dim=1).numpy()  # fmt: skip
        with torch.no_grad():
            chunks = []
            for start in range(0, x.shape[0], 4096):
                rows = np.arange(start, min(start + 4096, x.shape[0]))
                chunks.append(torch.softmax(self._model(self._tensor(x, rows)), dim=1).cpu())
        return torch.cat(chunks).numpy()

    def predict(self, inputs: Any) -> np.ndarray:
        """(N,) predicted scenario labels (same kind as the training labels)."""
        self._check_fitted()
        return self.classes_[self.predict_proba(inputs).argmax(axis=1)]

    # ------------------------------------------------------------------ save / load
    def _check_savable(self) -> None:
        if self.kind not in ("neural", "lm"):
            raise ValueError(
                f"kind={self.kind!r} is a scikit-learn model, not tensors: state_dict covers the "
                "torch kinds 'neural' and 'lm'; refit this one from its training rows (seconds)"
            )
        if self._vectorizer is not None:
            raise ValueError(
                "this 'neural' classifier was fitted on raw texts and its TF-IDF vocabulary is "
                "not a tensor; fit it on a precomputed TF-IDF matrix (keep the vectorizer "
                "yourself) or use kind='lm' to save it with state_dict"
            )

    def state_dict(self) -> dict[str, Tensor]:
        """The fitted network's tensors (and the column scaling of tabular inputs), on the CPU.

        Save them with safetensors next to ``classes_``; :meth:`load_state_dict` rebuilds the
        classifier. Kinds ``"neural"`` (on arrays or a precomputed sparse matrix) and ``"lm"``.
        """
        self._check_fitted()
        self._check_savable()
        state = {k: v.detach().cpu() for k, v in self._model.state_dict().items()}
        if self._scaler is not None:
            state["scaler.mean"] = torch.as_tensor(self._scaler.mean_)  # float64, as fitted
            state["scaler.scale"] = torch.as_tensor(self._scaler.scale_)
        return state

    def load_state_dict(
        self, state: Mapping[str, Tensor], *, classes: Sequence[Any]
    ) -> ScenarioClassifier:
        """Make this classifier the fitted one whose :meth:`state_dict` and ``classes_`` these are.

        Construct it with the same ``kind``, ``head``, ``hidden`` and ``embed_dim`` as the saved
        one (and, for ``"lm"`` on texts, the same ``encoder``). Returns ``self``.
        """
        self._check_savable()
        bag = "bag.weight" in state
        first = "bag.weight" if bag else "net.0.weight"
        if first not in state:
            raise ValueError(
                f"not a ScenarioClassifier state: expected a 'net.0.weight' or 'bag.weight' "
                f"tensor, got keys {sorted(state)[:6]}; pass what state_dict() returned"
            )
        width = state[first].shape[0 if bag else 1]
        net = self._net(width, len(classes), bag=bag)
        try:
            net.load_state_dict({k: v for k, v in state.items() if not k.startswith("scaler.")})
        except RuntimeError as err:
            raise ValueError(
                f"the saved network does not fit ScenarioClassifier(kind={self.kind!r}, "
                f"head={self.head!r}, hidden={self.hidden}, embed_dim={self.embed_dim}): {err}; "
                "construct it with the settings it was fitted with"
            ) from err
        if "scaler.mean" in state:
            from sklearn.preprocessing import StandardScaler

            self._scaler = StandardScaler()
            self._scaler.mean_ = state["scaler.mean"].numpy()
            self._scaler.scale_ = state["scaler.scale"].numpy()
            self._scaler.var_ = self._scaler.scale_**2
            self._scaler.n_features_in_ = width
        self.classes_ = np.asarray(classes)
        self._model, self._width = net.to(self.device).eval(), width
        return self


def _rows(inputs: Any) -> int:
    """Number of input rows: len of a list, first dimension of an array or sparse matrix."""
    if isinstance(inputs, (str, bytes)):
        raise TypeError("pass a list of texts, not a single string: [text]")
    if inputs is None:
        raise TypeError("inputs must be a list of texts or an (N, F) array, got None")
    shape = getattr(inputs, "shape", None)
    if shape is not None:
        return int(shape[0]) if len(shape) else 0
    try:
        return len(inputs)
    except TypeError:
        raise TypeError(
            f"inputs must be a list of texts or an (N, F) array, got {type(inputs).__name__}"
        ) from None


def _is_sparse(inputs: Any) -> bool:
    from scipy import sparse

    return sparse.issparse(inputs)
