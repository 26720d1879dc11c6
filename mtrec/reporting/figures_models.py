"""Diagram specs of the models taught in notebooks 04, 06 and 07.

Each ``*_spec()`` returns ``(boxes, arrows, title)``; a notebook draws it with
``draw_diagram(*spec)`` (:func:`mtrec.reporting.diagram.draw_diagram`), or on a given axis with
``draw_diagram(*spec, ax=ax)`` to put several side by side.
"""

from __future__ import annotations

from mtrec.reporting.diagram import Box

Spec = tuple[dict[str, Box], list[tuple], str]  # boxes, arrows, title


def feature_extraction_spec() -> Spec:
    """Notebook 04: one extractor per modality, then attention fusion into one item vector."""
    boxes = {
        "text": Box(0, 3, "film text", "input"), "image": Box(2, 3, "image", "input"),
        "audio": Box(4, 3, "audio clip", "input"), "id": Box(6, 3, "item id", "input"),
        "lm": Box(0, 2, "MiniLM +\nmean pool", "model"), "cnn": Box(2, 2, "narrow\nResNet-18", "model"),
        "rnn": Box(4, 2, "log-mel +\nGRU", "model"), "emb": Box(6, 2, "ID\nembedding", "model"),
        "fuse": Box(3, 1, "attention fusion\n(query attends to 4 tokens)", "shared", width=3.2),
        "item": Box(3, 0, "item vector (D)", "output"),
    }  # fmt: skip
    arrows = [("text", "lm"), ("image", "cnn"), ("audio", "rnn"), ("id", "emb"),
              ("lm", "fuse", "384→64"), ("cnn", "fuse", "128"), ("rnn", "fuse", "64"),
              ("emb", "fuse", "32"), ("fuse", "item")]  # fmt: skip
    return boxes, arrows, "Feature extraction and fusion (frozen extractors)"


def two_tower_spec() -> Spec:
    """Notebook 04: user tower · item tower, trained with BPR on (user, positive, negative)."""
    boxes = {
        "user": Box(0, 3, "user id", "input"), "item": Box(3, 3, "item: id, text, media", "input",
                                                            width=2.4),
        "ut": Box(0, 2, "user embedding", "model"),
        "it": Box(3, 2, "item tower: ID | text |\nfusion of all", "model", width=2.4),
        "dot": Box(1.5, 1, "dot product", "op"), "score": Box(1.5, 0, "score(u, i)", "output"),
        "bpr": Box(4.2, 0, "BPR: score(u, i⁺) > score(u, i⁻)", "op", width=2.8),
    }  # fmt: skip
    arrows = [("user", "ut"), ("item", "it"), ("ut", "dot", "p_u"), ("it", "dot", "v_i"),
              ("dot", "score"), ("score", "bpr")]  # fmt: skip
    return boxes, arrows, "Two-tower recommender"


def _towers(boxes: dict, arrows: list, sources: list[str], tasks: list[str], y: float) -> None:
    """Add one tower and one output box per task above ``sources`` (in place)."""
    for i, (source, task) in enumerate(zip(sources, tasks)):
        x = 2.0 * i - (len(tasks) - 1)
        boxes[f"tower{i}"] = Box(x, y, f"tower {task}", "specific", width=1.5)
        boxes[f"out{i}"] = Box(x, y + 1, f"logit {task}", "output", width=1.5)
        arrows += [(source, f"tower{i}"), (f"tower{i}", f"out{i}")]


def shared_bottom_spec() -> Spec:
    """Notebook 06: one shared MLP under one tower per task."""
    boxes = {"x": Box(0, 0, "features", "input"), "bottom": Box(0, 1, "shared bottom MLP", "shared",
                                                               width=2.4)}  # fmt: skip
    arrows: list = [("x", "bottom")]
    _towers(boxes, arrows, ["bottom", "bottom"], ["A", "B"], 2)
    return boxes, arrows, "Shared-Bottom"


def mmoe_spec() -> Spec:
    """Notebook 06: shared experts mixed by one softmax gate per task."""
    boxes = {"x": Box(0, 0, "features", "input"),
             "e1": Box(-1.9, 1, "expert 1", "shared", width=1.2),
             "e2": Box(-0.6, 1, "expert 2", "shared", width=1.2),
             "e3": Box(0.7, 1, "expert 3", "shared", width=1.2),
             "gA": Box(-1, 2, "gate A: Σ g·e", "specific", width=1.5),
             "gB": Box(1, 2, "gate B: Σ g·e", "specific", width=1.5)}  # fmt: skip
    arrows: list = [("x", e) for e in ("e1", "e2", "e3")]
    arrows += [(e, g) for e in ("e1", "e2", "e3") for g in ("gA", "gB")]
    _towers(boxes, arrows, ["gA", "gB"], ["A", "B"], 3)
    return boxes, arrows, "MMoE"


def ple_spec() -> Spec:
    """Notebook 06: each task's gate mixes its own experts and the shared ones (one CGC level)."""
    boxes = {"x": Box(0, 0, "features", "input"),
             "a": Box(-1.9, 1, "experts A", "specific", width=1.2),
             "s": Box(0, 1, "shared experts", "shared", width=1.5),
             "b": Box(1.9, 1, "experts B", "specific", width=1.2),
             "gA": Box(-1, 2, "gate A", "specific", width=1.5),
             "gB": Box(1, 2, "gate B", "specific", width=1.5)}  # fmt: skip
    arrows: list = [("x", "a"), ("x", "s"), ("x", "b"), ("a", "gA"), ("s", "gA"), ("s", "gB"),
                    ("b", "gB")]  # fmt: skip
    _towers(boxes, arrows, ["gA", "gB"], ["A", "B"], 3)
    return boxes, arrows, "PLE (one CGC level)"


def esmm_spec() -> Spec:
    """Notebook 06: pCTCVR = pCTR × pCVR, both towers on every impression, shared embeddings."""
    boxes = {"x": Box(0, 0, "features of every impression", "input", width=2.6),
             "emb": Box(0, 1, "shared embeddings", "shared", width=2.4),
             "ctr": Box(-1, 2, "CTR tower", "specific", width=1.5),
             "cvr": Box(1, 2, "CVR tower", "specific", width=1.5),
             "pctr": Box(-1, 3, "pCTR (watch)", "output", width=1.5),
             "mul": Box(1, 3, "× pCTR", "op", width=1.5),
             "pctcvr": Box(1, 4, "pCTCVR (like)", "output", width=1.5)}  # fmt: skip
    arrows = [("x", "emb"), ("emb", "ctr"), ("emb", "cvr"), ("ctr", "pctr"), ("cvr", "mul", "pCVR"),
              ("pctr", "mul"), ("mul", "pctcvr")]  # fmt: skip
    return boxes, arrows, "ESMM"


def multitask_specs() -> list[Spec]:
    """Notebook 06: Shared-Bottom, MMoE, PLE and ESMM, to draw side by side."""
    return [shared_bottom_spec(), mmoe_spec(), ple_spec(), esmm_spec()]


def content_cf_hybrid_spec() -> Spec:
    """Notebook 07: content scores from LM item vectors, CF scores from interactions, a blend."""
    boxes = {
        "text": Box(0, 3, "item text\n(title | genres)", "input"),
        "inter": Box(4, 3, "user × item\ninteractions", "input"),
        "lm": Box(0, 2, "MiniLM item vectors", "model", width=2.0),
        "profile": Box(0, 1, "content: cos(user profile,\nitem vector)", "op", width=2.4),
        "cf": Box(4, 1.5, "CF: EASE, kNN,\nBPR-MF", "model", width=2.0),
        "blend": Box(2, 0, "hybrid: (1−w)·z(CF) + w·z(content)", "shared", width=3.4),
        "init": Box(2, 3, "LM init of\nBPR item vectors", "op", width=1.7),
    }  # fmt: skip
    arrows = [("text", "lm"), ("lm", "profile"), ("inter", "profile", "history"),
              ("inter", "cf"), ("profile", "blend"), ("cf", "blend"), ("lm", "init"),
              ("init", "cf")]  # fmt: skip
    return boxes, arrows, "Content, collaborative filtering and hybrids"
