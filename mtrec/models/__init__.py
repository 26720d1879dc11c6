"""The models, one per file, grouped by family. Every name below imports from ``mtrec.models``.

One interface per family, so a learner who knows one model of a family knows them all:

* **Click models** (``multitask/``, ``scenario/``, ``student.py``): a batch is
  ``dict[str, Tensor]`` with the declared feature names, ``"labels"`` (B, T) float (NaN =
  unlabelled) and, for multi-scenario models, ``"scenario_ids"`` (B,) long.
  ``forward(batch) -> (B, T) logits``; ``loss(batch) -> (T,)`` per-task losses;
  ``predict(batch) -> (B, T)`` probabilities, under ``torch.no_grad()``.
  Train with :func:`mtrec.train.fit`, evaluate with :func:`mtrec.eval.click.evaluate`.
* **Top-K models** (``cf/``): ``fit(interactions)`` on a (U, I) 0/1 matrix (trained models such as
  BPR-MF are fitted by :func:`mtrec.train.fit` instead), then ``scores(interactions) -> (U, I)``;
  evaluate with :func:`mtrec.eval.topk.evaluate_topk`. ``cf/popularity.py`` serves both this
  family and the sequential one (``Popularity(N).fit(item_ids)``).
* **Sequential models** (``sequential/``): ``fit(...)`` on training sequences (or
  :func:`mtrec.train.fit` for the neural ones), then ``scores(histories) -> (U, N+1)`` for
  left-padded (U, L) histories (column 0 is padding); evaluate with
  :func:`mtrec.eval.next_item.evaluate_next_item`.
* **One top-k rule** (:mod:`~mtrec.models.ranking`): ``recommend`` (``SASRec``, ``Popularity``)
  and ``NextItems.generate`` never return a seen item, the padding id 0 or a repeat; a row with
  fewer than ``k`` unseen items left raises ``ValueError`` saying how many are left, and NaN
  scores are refused (``top_k_unseen``). Top-K models check their (U, I) matrices with
  ``check_interactions`` (2-D, non-empty, finite).
* **Generative models** (``generative/``): text in, text out; ``P5.scores`` ranks every
  item for a batch of prompts.
* **A pretrained language model** (``llm/``): SmolLM2-135M-Instruct, real weights from the
  data registry. ``load_language_model() -> (model, tokenizer)`` (a transformers causal LM);
  ``candidate_log_likelihood(model, tokenizer, prompt, candidates) -> (C,)`` scores candidate
  titles zero-shot after ``history_prompt(titles)``; ``add_lora(model)`` wraps it for fine-tuning.
* **Knowledge-graph models** (``kg/``): embeddings of (head, relation, tail) triples. A batch
  is ``{"heads", "relations", "tails"}``, each (B,) long (:func:`mtrec.data.kg.triple_batches`);
  ``loss(batch)`` samples negatives itself (train with :func:`mtrec.train.fit`);
  ``score(heads, relations, tails)`` (higher = more plausible), ``score_tails(heads, relations)``
  and ``score_heads(relations, tails) -> (B, N)`` over every entity, ``entity_vectors() -> (N, D)``
  (item features via :func:`mtrec.data.kg.item_kg_vectors`); evaluate with
  :func:`mtrec.eval.link_prediction.evaluate_link_prediction`. ``kg/cke.py`` is a top-K model
  (``scores() -> (U, I)``, BPR-trained) whose items add projected KG/text vectors; ``kg/paths.py``
  explains recommendations by knowledge paths.

Each model file holds a frozen ``...Config`` dataclass with a ``tiny()`` constructor for tests.
Names are imported on first use, so ``import mtrec.models`` stays cheap and the optional
dependencies (``transformers`` for P5 and the language model, ``gguf`` and ``peft`` for the
latter) load only when asked for.
"""

from __future__ import annotations

import importlib
from typing import Any

_FAMILIES = {
    "multitask.shared_bottom": ("SharedBottom", "SharedBottomConfig"),
    "multitask.mmoe": ("MMoE", "MMoEConfig"),
    "multitask.ple": ("PLE", "PLEConfig"),
    "multitask.esmm": ("ESMM", "ESMMConfig"),
    "scenario.star": ("STAR", "STARConfig"),
    "scenario.scenario_moe": ("ScenarioMoE", "ScenarioMoEConfig"),
    "scenario.pepnet": ("PEPNet", "PEPNetConfig"),
    "scenario.m2m": ("M2M", "M2MConfig"),
    "scenario.adasparse": ("AdaSparse", "AdaSparseConfig"),
    "scenario.sarnet": ("SARNet", "SARNetConfig"),
    "scenario.hamur": ("HAMUR", "HAMURConfig"),
    "sequential.cooccurrence": ("CoOccurrence",),
    "sequential.sasrec": ("SASRec", "SASRecConfig"),
    "sequential.next_items": ("NextItems", "NextItemsConfig", "NextItemsSampler"),
    "cf.itemknn": ("ItemKNN", "KNNConfig"),
    "cf.userknn": ("UserKNN",),
    "cf.bpr": ("BPRMF", "BPRConfig", "BPRSampler"),
    "cf.ease": ("EASE", "EASEConfig"),
    "cf.content": ("ContentRecommender", "ContentConfig"),
    "cf.hybrid": ("WeightedHybrid",),
    "cf.popularity": ("Popularity",),
    "kg.transe": ("TransE", "TransEConfig"),
    "kg.distmult": ("DistMult", "DistMultConfig"),
    "kg.cke": ("CKE", "CKEConfig", "WarmItemSampler"),
    "kg.paths": ("KGExplainer", "PathExplanation"),
    "generative.p5": ("P5", "P5Config"),
    "llm.loader": ("load_language_model",),
    "llm.scoring": ("candidate_log_likelihood", "history_prompt"),
    "llm.lora": ("add_lora", "trainable_share"),
    "student": ("StudentMLP", "StudentConfig"),
    "ranking": ("top_k_unseen", "check_interactions"),
}
_EXPORTS = {name: module for module, names in _FAMILIES.items() for name in names}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mtrec.models' has no attribute {name!r}")
    return getattr(importlib.import_module(f"mtrec.models.{_EXPORTS[name]}"), name)


def __dir__() -> list[str]:
    return __all__
