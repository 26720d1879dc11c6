"""Diagram specs for notebooks 09-14 (distillation, timing, the serving system, transfer, knowledge
graphs, compute allocation), drawn with :func:`mtrec.reporting.diagram.draw_diagram`.

Each ``*_diagram()`` returns ``(boxes, arrows)``; a notebook draws it with
``draw_diagram(*distillation_diagram(), "title")``. :func:`draw_kg_neighbourhood` draws the
knowledge graph around one item (notebook 13).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from mtrec.reporting.diagram import Box

Spec = tuple[dict[str, Box], list[tuple[str, ...]]]


def distillation_diagram() -> Spec:
    """Notebook 09: teacher → soft targets → student, mixed with the labels by α (with T)."""
    boxes = {
        "rich": Box(0, 2, "ids, demographics,\ngenres, title text", "input", 2.0, 0.7),
        "teacher": Box(2.6, 2, "teacher: MMoE\n(trained first, frozen)", "model", 2.1, 0.7),
        "soft": Box(5.4, 2, "soft targets\np = σ(z / T)", "op", 1.8, 0.7),
        "ids": Box(0, 0, "user id, item id", "input", 2.0),
        "student": Box(2.6, 0, "student: ID-only MLP\nlogits s", "model", 2.1, 0.7),
        "softloss": Box(5.4, 1, "soft term\nT² · BCE(σ(s/T), p)", "op", 2.0, 0.7),
        "labels": Box(2.6, -1.3, "labels y\n(NaN on transfer rows)", "input", 2.1, 0.7),
        "hard": Box(5.4, -0.6, "hard term\nBCE(s, y)", "op", 1.8, 0.7),
        "loss": Box(8.2, 0.2, "loss = α · hard\n+ (1 − α) · soft", "output", 2.0, 0.7),
    }
    arrows = [
        ("rich", "teacher"), ("teacher", "soft", "z"), ("soft", "softloss"),
        ("ids", "student"), ("student", "softloss"), ("student", "hard"), ("labels", "hard"),
        ("softloss", "loss", "1 − α"), ("hard", "loss", "α"),
    ]  # fmt: skip
    return boxes, arrows


def timing_diagram() -> Spec:
    """Notebook 10: what one timed measurement covers (batch → model → synchronize → clock)."""
    boxes = {
        "batch": Box(0, 1, "batch: real shapes,\nreal ids (not zeros)", "input", 2.0, 0.7),
        "warm": Box(2.4, 1, "warm-up steps\n(not timed)", "op", 1.7, 0.7),
        "start": Box(4.6, 1, "start clock", "op", 1.5),
        "step": Box(4.6, 0, "model step\n(forward or train)", "model", 1.8, 0.7),
        "sync": Box(6.8, 0, "synchronize\n(CUDA only)", "op", 1.7, 0.7),
        "stop": Box(6.8, 1, "stop clock", "op", 1.5),
        "stats": Box(9.1, 1, "repeat; report\np50 and p90", "output", 1.8, 0.7),
    }
    arrows = [("batch", "warm"), ("warm", "start"), ("start", "step"), ("step", "sync"),
              ("sync", "stop"), ("stop", "stats")]  # fmt: skip
    return boxes, arrows


def cpu_time_diagram() -> Spec:
    """Notebook 10: where one CPU training step's time goes (fixed, compute, memory)."""
    boxes = {
        "step": Box(0, 1, "one CPU train step\nat batch B", "model", 2.0, 0.7),
        "fixed": Box(3.2, 2, "fixed: Python, dispatch,\noptimiser launch", "op", 2.5, 0.7),
        "compute": Box(3.2, 1, "compute: B · FLOPs\n÷ matmul ceiling", "op", 2.5, 0.7),
        "memory": Box(
            3.2, 0, "memory: gathers, elementwise,\nAdam's reads and writes", "op", 2.8, 0.7
        ),
        "profile": Box(6.6, 1, "profile: matmul share\nand top other ops", "output", 2.2, 0.7),
    }
    arrows = [("step", "fixed"), ("step", "compute"), ("step", "memory"),
              ("fixed", "profile"), ("compute", "profile"), ("memory", "profile")]  # fmt: skip
    return boxes, arrows


def allocator_diagram() -> Spec:
    """Notebook 10: a step's large buffer, page-faulted in afresh or reused from the heap."""
    boxes = {
        "alloc": Box(0, 1, "step allocates an\n8 MiB activation", "model", 2.2, 0.7),
        "mmap": Box(3.0, 2, "glibc defaults: fresh\nmmap, freed to the OS", "op", 2.6, 0.7),
        "fault": Box(6.4, 2, "first write to each page:\nfault, kernel zeroes it", "op", 2.8, 0.7),
        "heap": Box(3.0, 0, "freed memory kept:\nserved from the heap", "op", 2.6, 0.7),
        "reuse": Box(6.4, 0, "same pages, step after\nstep: no fault", "output", 2.8, 0.7),
    }
    arrows = [("alloc", "mmap"), ("mmap", "fault"), ("alloc", "heap"), ("heap", "reuse")]
    return boxes, arrows


def serving_diagram() -> Spec:
    """Notebook 11: the serving pipeline, from the request to the explained top-k list."""
    top, bottom = 1.2, 0.0
    boxes = {
        "query": Box(0, top, "user (id or history)\n+ page or query", "input", 2.0, 0.7),
        "encoder": Box(2.3, top, "text encoder\n(MiniLM, query only)", "model", 2.0, 0.7),
        "router": Box(4.6, top, "scenario\nclassifier", "model", 1.7, 0.7),
        "tasks": Box(6.7, top, "task mapping\n(rules per scenario)", "op", 1.9, 0.7),
        "models": Box(9.0, top, "multi-task model\n(MMoE, every item)", "model", 2.0, 0.7),
        "fusion": Box(9.0, bottom, "fusion: task scores\n+ scenario + query", "op", 2.0, 0.7),
        "dedup": Box(6.7, bottom, "filter seen,\ndedup titles", "op", 1.9, 0.7),
        "mmr": Box(4.6, bottom, "MMR re-rank\n(λ)", "op", 1.7, 0.7),
        "explain": Box(2.3, bottom, "explanation\n(attention on history)", "op", 2.0, 0.7),
        "out": Box(0, bottom, "top-k list", "output", 2.0, 0.7),
    }
    arrows = [("query", "encoder"), ("encoder", "router"), ("router", "tasks", ""),
              ("tasks", "models"), ("models", "fusion"), ("fusion", "dedup"), ("dedup", "mmr"),
              ("mmr", "explain"), ("explain", "out")]  # fmt: skip
    return boxes, arrows


def star_transfer_diagram(num_trained: int = 5) -> Spec:
    """Notebook 12: adding scenario S to a trained STAR layer: one more slice W_S, b_S."""
    boxes = {
        "x": Box(0, 0, "x (B, D_in)\nrows of scenario p", "input", 1.9, 0.7),
        "shared": Box(1.9, 1.3, "shared W, b\n(trained)", "shared", 1.7, 0.7),
        "layer": Box(4.6, 0, "x (W ⊙ W_p) + b + b_p\none bmm per scenario", "op", 2.4, 0.7),
        "out": Box(7.2, 0, "hidden (B, D_out)\n→ towers → logits", "output", 2.0, 0.7),
    }
    for p in range(num_trained):
        boxes[f"w{p}"] = Box(3.8 + 0.75 * p, 1.3, f"W_{p}, b_{p}", "specific", 0.7, 0.55)
    boxes["new"] = Box(3.8 + 0.75 * num_trained + 0.45, 1.3, f"new\nW_{num_trained}, b_{num_trained}",
                       "model", 0.9, 0.7)  # fmt: skip
    arrows = [("x", "layer"), ("shared", "layer"), ("w2", "layer"), ("new", "layer", "init:\n"
              "shared / mean /\nnearest"), ("layer", "out")]  # fmt: skip
    return boxes, arrows


def kg_diagram() -> Spec:
    """Notebook 13: triples → TransE entity vectors → CKE item vectors; paths → explanations."""
    boxes = {
        "kg": Box(0, 2, "knowledge graph\n(head, relation, tail)", "input", 2.1, 0.7),
        "transe": Box(2.6, 2, "TransE: h + r ≈ t\nscore −‖h + r − t‖₁", "model", 2.2, 0.7),
        "vectors": Box(5.2, 2, "entity vector\nof each item", "op", 1.7, 0.7),
        "ids": Box(2.6, 1, "user-item ratings\n(BPR)", "input", 2.2, 0.7),
        "cke": Box(5.2, 1, "CKE item vector =\nID emb + proj(KG, text)", "model", 2.3, 0.7),
        "scores": Box(7.8, 1, "top-10 per user", "output", 1.8, 0.7),
        "paths": Box(2.6, 0, "paths ≤ 2 hops: liked\nfilm → entity → item", "op", 2.3, 0.7),
        "why": Box(7.8, 0, '"because you liked …"', "output", 2.2, 0.7),
    }
    arrows = [("kg", "transe"), ("transe", "vectors"), ("vectors", "cke"), ("ids", "cke"),
              ("cke", "scores"), ("kg", "paths"), ("paths", "why"), ("scores", "why")]  # fmt: skip
    return boxes, arrows


def cascade_diagram() -> Spec:
    """Notebook 14: the cascade (student → top N → teacher) and the controller that picks N."""
    boxes = {
        "request": Box(0, 1.3, "request: user +\nC unseen items", "input", 1.8, 0.7),
        "student": Box(2.3, 1.3, "student (ID MLP)\nscores all C", "model", 1.9, 0.7),
        "topn": Box(4.6, 1.3, "keep the\nstudent's top N", "op", 1.8, 0.7),
        "teacher": Box(6.9, 1.3, "teacher (MMoE + text)\nre-scores N", "model", 2.1, 0.7),
        "out": Box(9.3, 1.3, "top-10: teacher's order\nof N, then student's", "output", 2.2, 0.7),
        "slo": Box(0, 0, "SLO, queue,\nmeasured costs", "input", 1.8, 0.7),
        "controller": Box(
            3.4, 0, "controller: deepest N\nwith cost(C, N) ≤ time left", "op", 2.6, 0.7
        ),
        "budget": Box(6.9, 0, "scenario budget:\ntasks, depth cap", "specific", 2.1, 0.7),
    }
    arrows = [("request", "student"), ("student", "topn"), ("topn", "teacher"),
              ("teacher", "out"), ("slo", "controller"), ("budget", "controller"),
              ("controller", "topn", "N")]  # fmt: skip
    return boxes, arrows


def draw_kg_neighbourhood(
    explainer: Any,
    relations: Sequence[str],
    entities: Sequence[str],
    titles: Sequence[str],
    item: int,
    centre: int,
    *,
    ring_size: int = 9,
    per_neighbour: int = 2,
) -> Figure:
    """The graph around entity ``centre`` (linked to item row ``item``): its neighbours and, one
    hop further, linked items that share them.

    Args:
        explainer: a :class:`mtrec.models.kg.paths.KGExplainer` (``edge``, ``neighbours``,
            ``entity_item``, ``degree``).
        relations, entities: names of the relation and entity ids; ``titles``: item titles.
        item, centre: the item row and its entity id.
        ring_size: neighbours shown; ``per_neighbour``: items shown per neighbour.
    """

    def role(a: int, b: int) -> str:  # the relation between a and b, read from a's side
        h, r, _ = explainer.edge(a, b)
        name = str(relations[r])
        return name.rsplit(".", 1)[-1] if h == a else name.split(".")[1]

    def items_of(entity: int) -> list[int]:
        near = explainer.neighbours(entity).tolist()
        return [
            explainer.entity_item[e] for e in near if e in explainer.entity_item and e != centre
        ]

    ring = sorted(explainer.neighbours(centre).tolist(),
                  key=lambda m: (-min(len(items_of(m)), 2), explainer.degree[m]))[:ring_size]  # fmt: skip
    fig, ax = plt.subplots(figsize=(9, 6.5))
    ax.scatter([0], [0], s=900, color="tab:red", zorder=3)
    ax.text(0, -0.22, titles[item], ha="center", fontsize=9, weight="bold")
    for i, m in enumerate(ring):
        angle = 2 * np.pi * i / len(ring)
        x, y = np.cos(angle), np.sin(angle)
        ax.plot([0, x], [0, y], color="grey", lw=1, zorder=1)
        ax.scatter([x], [y], s=300, color="tab:orange", zorder=3)
        ax.text(x, y + 0.1, f"{role(centre, m)}\n{entities[m]}", ha="center", fontsize=7)
        for j, other in enumerate(items_of(m)[:per_neighbour]):
            turn = angle + 0.22 * (2 * j - 1)
            x2, y2 = 1.9 * np.cos(turn), 1.9 * np.sin(turn)
            ax.plot([x, x2], [y, y2], color="lightgrey", lw=1, zorder=1)
            ax.scatter([x2], [y2], s=120, color="tab:blue", zorder=3)
            ax.text(x2, y2 - 0.13, titles[other][:24], ha="center", fontsize=6.5)
    ax.set_title(f"Knowledge graph around the entity linked to {titles[item]}: red = that entity,"
                 " orange = its\nneighbours (relation, Freebase id), blue = linked ML-100k items "
                 "2 hops away")  # fmt: skip
    ax.set_axis_off()
    fig.tight_layout()
    return fig
