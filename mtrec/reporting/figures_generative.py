"""Diagram specs of notebooks 08 and 15: ``draw_diagram(*p5())``, ``draw_diagram(*lora_yes_no())``."""

from __future__ import annotations

from mtrec.reporting.diagram import Box

__all__ = ["code_lm", "llm_chain", "lora_yes_no", "p5", "prefix_trie", "semantic_ids"]


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


def code_lm() -> tuple[dict[str, Box], list[tuple[str, ...]], str]:
    """SmolLM2 + new code tokens + LoRA → trie-constrained beam search → item code."""
    boxes = {
        "prompt": Box(
            0, 2, "'Films watched: c0_3 c1_12\nc2_0 … Next film:'", "input", width=2.6, height=0.8
        ),
        "new": Box(0, 1, "new token rows\n(trained)", "op", width=2.2, height=0.8),
        "lm": Box(3.5, 2, "SmolLM2-135M\n(frozen) + LoRA", "model", width=2.2, height=0.8),
        "trie": Box(3.5, 1, "prefix trie +\nbeam search", "op", width=2.2, height=0.8),
        "out": Box(6.4, 1.5, "item code\nc0_5 c1_2 c2_1", "output", width=2.0, height=0.8),
    }
    arrows = [("prompt", "lm", "tokens"), ("new", "lm", "embed"), ("new", "trie", "output"),
              ("lm", "trie", "states"), ("trie", "out")]  # fmt: skip
    return boxes, arrows, "A pretrained LM writes item codes: new tokens, LoRA, trie decoding"


def prefix_trie() -> tuple[dict[str, Box], list[tuple[str, ...]], str]:
    """A prefix trie over three-token item codes, one film banned (already watched)."""
    boxes = {
        "start": Box(0, 2, "start of\nthe answer", "input"),
        "a": Box(2, 3, "c0_3", "op", width=1.0),
        "b": Box(2, 1, "c0_7", "op", width=1.0),
        "aa": Box(4, 3.6, "c1_12", "op", width=1.0),
        "ab": Box(4, 2.4, "c1_4", "op", width=1.0),
        "ba": Box(4, 1, "c1_1", "op", width=1.0),
        "seen": Box(6.4, 4.1, "c2_0: watched\n(banned)", "shared", width=1.9, height=0.7),
        "new": Box(6.4, 3.1, "c2_1: a film\nnot yet seen", "output", width=1.9, height=0.7),
        "ab0": Box(6.4, 2.1, "c2_0: a film", "output", width=1.9),
        "ba0": Box(6.4, 1, "c2_0: a film", "output", width=1.9),
    }
    arrows = [("start", "a"), ("start", "b"), ("a", "aa"), ("a", "ab"), ("b", "ba"),
              ("aa", "seen"), ("aa", "new"), ("ab", "ab0"), ("ba", "ba0")]  # fmt: skip
    title = "Constrained decoding: each step may only continue a path to an unseen film"
    return boxes, arrows, title


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


def lora_yes_no() -> tuple[dict[str, Box], list[tuple[str, ...]], str]:
    """Notebook 15: a review as a prompt → SmolLM2 with LoRA adapters → P(Yes) vs P(No)."""
    boxes = {
        "row": Box(0, 1, "review row: age, class,\ndepartment, title", "input", 2.2, 0.7),
        "prompt": Box(2.6, 1, 'prompt ending\n"... recommend it? Answer:"', "op", 2.4, 0.7),
        "lm": Box(5.4, 1, "SmolLM2-135M (frozen)\n+ LoRA B·A on q, v", "model", 2.5, 0.7),
        "logits": Box(8.1, 1, "next-token logits\nl_Yes, l_No", "op", 2.0, 0.7),
        "p": Box(10.5, 1, "P(Yes) =\nσ(l_Yes − l_No)", "output", 1.9, 0.7),
        "label": Box(8.1, -0.2, "label: recommended\n(1 = Yes, 0 = No)", "input", 2.2, 0.7),
    }
    arrows = [("row", "prompt"), ("prompt", "lm"), ("lm", "logits"), ("logits", "p"),
              ("label", "p", "BCE trains A, B")]  # fmt: skip
    return boxes, arrows, "TALLRec-style fine-tuning: the LM answers Yes or No"


def llm_chain() -> tuple[dict[str, Box], list[tuple[str, ...]], str]:
    """Notebook 15: pre-trained → zero-shot → LoRA fine-tuned → distilled student."""
    boxes = {
        "pre": Box(0, 0, "pre-trained LM\n(SmolLM2-135M)", "model", 2.0, 0.7),
        "zero": Box(2.6, 0, "zero-shot:\nrank by log P(title)", "op", 2.1, 0.7),
        "lora": Box(5.2, 0, "fine-tune on labels:\nLoRA, 0.3% of weights", "shared", 2.2, 0.7),
        "student": Box(7.9, 0, "distil: a small MLP\nlearns the LM's P(Yes)", "specific", 2.1, 0.7),
        "serve": Box(10.4, 0, "serve the\nstudent", "output", 1.6, 0.7),
    }
    arrows = [("pre", "zero"), ("zero", "lora"), ("lora", "student"), ("student", "serve")]
    return boxes, arrows, "Pre-train → fine-tune → distil with a real language model"
