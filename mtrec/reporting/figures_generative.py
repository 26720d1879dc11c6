"""Diagram specs of notebook 08: ``draw_diagram(*p5())`` and ``draw_diagram(*semantic_ids())``."""

from __future__ import annotations

from mtrec.reporting.diagram import Box

__all__ = ["p5", "semantic_ids"]


def p5() -> tuple[dict[str, Box], list[tuple[str, ...]], str]:
    """Prompt → T5 encoder → T5 decoder → trie-constrained decoding → item code."""
    boxes = {
        "prompt": Box(
            0, 2, "prompt: history as\nitem codes + words", "input", width=2.2, height=0.8
        ),
        "enc": Box(0, 1, "T5 encoder", "model"),
        "dec": Box(2.6, 1, "T5 decoder\n(token by token)", "model", width=2.0, height=0.8),
        "trie": Box(2.6, 2, "prefix trie: only\nvalid, unseen codes", "op", width=2.2, height=0.8),
        "out": Box(5.2, 1, "item code\nc0_3 c1_12 c2_0", "output", width=2.0, height=0.8),
    }
    arrows = [("prompt", "enc"), ("enc", "dec", "states"), ("trie", "dec", "mask"),
              ("dec", "out")]  # fmt: skip
    return boxes, arrows, "P5: recommendation as text-to-text, decoded under a trie"


def semantic_ids() -> tuple[dict[str, Box], list[tuple[str, ...]], str]:
    """Residual quantisation: vector → level-1 centre → residual → level-2 centre → collision."""
    boxes = {
        "x": Box(0, 2, "MiniLM vector of\n'title | genres'", "input", width=2.2, height=0.8),
        "l1": Box(0, 1, "level 1: nearest\nof 16 centres → c0", "op", width=2.2, height=0.8),
        "r1": Box(2.6, 1, "residual =\nvector − centre", "op", width=2.0, height=0.8),
        "l2": Box(2.6, 2, "level 2: nearest\nof 16 centres → c1", "op", width=2.2, height=0.8),
        "c": Box(5.2, 2, "collision level c2:\n0, 1, ... per cell", "op", width=2.2, height=0.8),
        "id": Box(5.2, 1, "semantic ID\n(c0, c1, c2)", "output", width=2.0, height=0.8),
    }
    arrows = [("x", "l1"), ("l1", "r1"), ("r1", "l2"), ("l2", "c"), ("c", "id")]
    return boxes, arrows, "Semantic IDs by residual k-means (TIGER's RQ idea)"
