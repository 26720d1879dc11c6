"""Diagram specs of the course's first notebooks (00-03), drawn with :func:`draw_diagram`.

Each function returns ``(boxes, arrows, title)``; a notebook draws it with
``draw_diagram(*pipeline())`` (or passes ``ax=`` to put two diagrams side by side). Box kinds
follow the course legend of :mod:`mtrec.reporting.diagram`.
"""

from __future__ import annotations

from mtrec.reporting.diagram import Box

Spec = tuple[dict[str, Box], list[tuple[str, ...]], str]

__all__ = ["attention", "data_to_tasks", "encoder_decoder", "multi_head", "pipeline", "sasrec"]


def pipeline() -> Spec:
    """The whole system, user input to recommendations, with the notebook of each stage."""
    tall = {"width": 2.1, "height": 0.75}
    boxes = {
        "input": Box(0, 1, "user input\nhistory, context, media", "input", **tall),
        "features": Box(2.5, 1, "feature extraction\ntext LM, CNN, RNN (04)", "model", **tall),
        "scenario": Box(5, 1, "scenario classification\ntree, SVM, neural (05)", "model", **tall),
        "tasks": Box(7.5, 1, "task mapping\nrules or learned (05)", "op", **tall),
        "models": Box(7.5, 0, "scenario / task models\nSTAR, MMoE, PLE, ESMM,\n"
                      "SASRec, P5 (02-08)", "specific", width=2.1, height=0.9),
        "training": Box(5, 0, "training\npre-train, fine-tune,\ndistil (06, 09)", "shared",
                        width=2.1, height=0.9),
        "generation": Box(2.5, 0, "recommendation generation\nfuse, dedupe, re-rank,\n"
                          "explain (11)", "output", width=2.3, height=0.9),
    }  # fmt: skip
    arrows = [("input", "features"), ("features", "scenario"), ("scenario", "tasks"),
              ("tasks", "models"), ("models", "training"), ("training", "generation")]  # fmt: skip
    return boxes, arrows, "The system the course builds (notebook numbers in brackets)"


def data_to_tasks() -> Spec:
    """Each dataset → its scenario definition → its task labels → its split protocol."""
    rows = [
        ("ml", "MovieLens-100k\nratings", "genre channel\n5 scenarios", "watch, like\n(rating >= 4)",
         "leave-last-out\nper-user 75/25"),
        ("cl", "Clothing\nreviews", "department\n6 scenarios", "recommended,\nlike, helpful",
         "random\n80/10/10"),
        ("ad", "Adult\ncensus records", "one scenario", "income > 50K,\nnever married",
         "random\n80/10/10"),
    ]  # fmt: skip
    boxes: dict[str, Box] = {}
    arrows: list[tuple[str, ...]] = []
    size = {"width": 1.9, "height": 0.7}
    for y, (key, source, scenario, tasks, split) in zip((2, 1, 0), rows):
        boxes[f"{key}0"] = Box(0, y, source, "input", **size)
        boxes[f"{key}1"] = Box(2.4, y, scenario, "specific", **size)
        boxes[f"{key}2"] = Box(4.8, y, tasks, "output", **size)
        boxes[f"{key}3"] = Box(7.2, y, split, "op", **size)
        arrows += [(f"{key}0", f"{key}1"), (f"{key}1", f"{key}2"), (f"{key}2", f"{key}3")]
    return boxes, arrows, "Data → scenarios → tasks → leak-free splits"


def attention() -> Spec:
    """Scaled dot-product attention, softmax(Q Kᵀ / √d, masked) V, as a flow of operations."""
    boxes = {
        "q": Box(0, 4, "Q (L_q, d)", "input", width=1.3),
        "k": Box(1.6, 4, "K (L_k, d)", "input", width=1.3),
        "v": Box(3.4, 4, "V (L_k, d)", "input", width=1.3),
        "scores": Box(0.8, 3, "Q Kᵀ (L_q, L_k)", "op"),
        "scale": Box(0.8, 2, "÷ √d", "op"),
        "mask": Box(0.8, 1, "mask: -inf where\nnot allowed", "op", height=0.7),
        "softmax": Box(0.8, 0, "softmax over keys", "op"),
        "out": Box(3.4, 0, "weights · V (L_q, d)", "output"),
    }  # fmt: skip
    arrows = [("q", "scores"), ("k", "scores"), ("scores", "scale"), ("scale", "mask"),
              ("mask", "softmax"), ("softmax", "out"), ("v", "out")]  # fmt: skip
    return boxes, arrows, "Scaled dot-product attention"


def multi_head(num_heads: int = 2) -> Spec:
    """Multi-head attention: H projections of x, H attentions, concatenated and mixed by W^O."""
    boxes = {"x": Box(0, 3, "x (L, D)", "input")}
    arrows: list[tuple[str, ...]] = []
    for h in range(num_heads):
        col = (h - (num_heads - 1) / 2) * 2.0
        boxes[f"p{h}"] = Box(col, 2, f"head {h + 1}: x W_Q, x W_K, x W_V\n(L, D/H) each",
                             "model", width=1.9, height=0.7)  # fmt: skip
        boxes[f"a{h}"] = Box(col, 1, "scaled dot-product\nattention", "op", height=0.7)
        arrows += [("x", f"p{h}"), (f"p{h}", f"a{h}"), (f"a{h}", "concat")]
    boxes["concat"] = Box(0, 0, "concat heads · W_O (L, D)", "output", width=2.2)
    return boxes, arrows, f"Multi-head attention (H = {num_heads})"


def encoder_decoder() -> Spec:
    """The Transformer encoder-decoder (Vaswani et al., 2017) as notebook 03 trains it."""
    boxes = {
        "src": Box(0, 0, "source tokens", "input"),
        "src_emb": Box(0, 1, "embedding\n+ positions", "model", height=0.7),
        "enc": Box(0, 2.3, "encoder layer × N\nself-attention\n+ feed-forward",
                   "shared", width=1.8, height=0.95),
        "tgt": Box(3, 0, "target, shifted right\n(start token first)", "input", width=2.0,
                   height=0.7),
        "tgt_emb": Box(3, 1, "embedding\n+ positions", "model", height=0.7),
        "dec": Box(3, 2.3, "decoder layer × N\ncausal self-attention\n+ cross-attention\n"
                   "+ feed-forward", "shared", width=2.0, height=1.15),
        "out": Box(3, 3.6, "linear + softmax\nnext token", "output", height=0.7),
    }  # fmt: skip
    arrows = [("src", "src_emb"), ("src_emb", "enc"), ("enc", "dec"),
              ("tgt", "tgt_emb"), ("tgt_emb", "dec"), ("dec", "out")]  # fmt: skip
    return boxes, arrows, "Transformer encoder-decoder\n(the encoder output feeds cross-attention)"


def sasrec() -> Spec:
    """SASRec (Kang & McAuley, 2018): causal self-attention over the history scores every item."""
    boxes = {
        "hist": Box(0, 0, "history i_1 ... i_L\n(left-padded)", "input", width=1.9, height=0.7),
        "emb": Box(0, 1, "item embedding\n+ learned position", "model", width=1.9, height=0.7),
        "blocks": Box(0, 2.3, "2 × causal\nself-attention block\n(pre-LN)", "shared",
                      width=1.9, height=0.95),
        "h": Box(0, 3.6, "h_t: state after\nposition t", "op", height=0.7),
        "items": Box(2.6, 1, "the same item\nembeddings E", "model", height=0.7),
        "scores": Box(2.6, 3.6, "scores h_t · E\nfor all N items", "output", height=0.7),
    }  # fmt: skip
    arrows = [("hist", "emb"), ("emb", "blocks"), ("blocks", "h"), ("h", "scores"),
              ("items", "scores", "shared table")]  # fmt: skip
    return boxes, arrows, "SASRec: next-item scores"
