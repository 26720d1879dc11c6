"""The LM-initialised generative recommender beside the from-scratch P5 (notebook 08's table).

Protocol (part ``lm`` of ``mtrec run generative``; the split, histories, test users, metrics
and semantic codes are part ``next``'s):

* Model: :class:`mtrec.models.generative.code_lm.CodeLM`: SmolLM2-135M-Instruct with the
  semantic-id tokens (residual k-means over MiniLM "title | genres", the ``p5-semantic`` codes
  of the same seed) added to its vocabulary, LoRA rank :data:`RANK` on every linear layer; the
  prompt names the user's last :data:`HISTORY` films.
* Training: :data:`POSITIONS` next-item examples per user, drawn once per seed from the user's
  last 50 training steps (the P5 window); Adam lr :data:`LR`, batches of :data:`BATCH`, bf16
  autocast on the CPU; early stopping on the **validation loss** (the mean negative
  log-likelihood of each user's validation film's code) with patience :data:`PATIENCE`, at most
  :data:`EPOCHS` epochs; the best state is restored. The settings were not tuned: one pass of
  the 134.5M-parameter model over the examples takes minutes on a 2-core CPU.
* Test: trie-constrained beam search (:data:`BEAMS` beams) writes each user's 10 most likely
  unseen items; HR and NDCG@5/10 of the test film among them. The beam search can only miss
  items that a full ranking would place in the top 10, so these are lower bounds of the
  full-ranking figures that the P5 rows report (P5 scores every item's whole code).
* Seeds 0, 1, 2 (codes, new-token initialisation, LoRA initialisation, example draw); one
  thread per seed; about 30 minutes per seed on one core of the 2-core machine.

Rows: model ``smollm2-semantic``, task ``next_item_schemes``, dataset ``ml-100k``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from mtrec.data import TensorBatcher
from mtrec.experiments.generative_data import (
    convergence,
    next_item_metrics,
    scheme_codebook,
    valid_histories,
)
from mtrec.models.generative.code_lm import TARGETS, CodeLM
from mtrec.train import History, fit
from mtrec.utils import set_seed

log = logging.getLogger(__name__)

MODEL = "smollm2-semantic"
SCHEME = "semantic"  # the codes: semantic ids, what an LM's text knowledge could help with
HISTORY = 8  # films named in a prompt (P5's prompts name 16; an LM token costs ~500x a P5 one)
POSITIONS = 2  # training examples per user, from its last WINDOW training steps
WINDOW = 50  # targets come from each user's latest WINDOW training steps (P5's default window)
RANK = 8  # LoRA rank on every linear layer
LR = 2e-3  # Adam learning rate (LoRA matrices and the new token rows)
BATCH = 32
EPOCHS = 8  # cap on passes over the examples
PATIENCE = 2
BEAMS = 32  # prefixes kept per user at each step of the trie-constrained beam search


def examples(sequences: dict[int, list[tuple[int, int]]], *, positions: int = POSITIONS,
             seed: int = 0) -> tuple[list[list[int]], list[int]]:  # fmt: skip
    """``positions`` (history, next item) pairs per user, targets drawn from the last
    :data:`WINDOW` training steps (each with at least one earlier item)."""
    rng = np.random.default_rng(seed)
    histories, targets = [], []
    for user in sorted(sequences):
        items = [int(i) for i, _ in sequences[user]]
        steps = np.arange(max(1, len(items) - WINDOW), len(items))
        for t in rng.choice(steps, size=min(positions, len(steps)), replace=False).tolist():
            histories.append(items[:t])
            targets.append(items[t])
    return histories, targets


def validation_loss(model: CodeLM, histories: Sequence[Sequence[int]], targets: Sequence[int],
                    batch_size: int = 64) -> float:  # fmt: skip
    """Mean negative log-likelihood of each target's code (bf16 autocast, no gradients)."""
    model.eval()
    total = 0.0
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        for s in range(0, len(targets), batch_size):
            batch = model.encode(histories[s : s + batch_size], targets[s : s + batch_size])
            total += float(model.loss(batch)) * len(batch["target"])
    return total / len(targets)


def build_code_lm(codebook, seed: int) -> CodeLM:
    """SmolLM2 with ``codebook``'s tokens added and LoRA (rank :data:`RANK`) on every linear
    layer; ``seed`` draws the new rows and the adapters. Untrained."""
    from mtrec.models.llm import add_lora, load_language_model

    lm, tokenizer = load_language_model(device="cpu")
    set_seed(seed)
    lm = add_lora(lm, rank=RANK, alpha=2 * RANK, targets=TARGETS)
    return CodeLM(lm, tokenizer, codebook, history=HISTORY)


def train_code_lm(data, seed: int, *, epochs: int = EPOCHS, lr: float = LR,
                  positions: int = POSITIONS) -> tuple[CodeLM, History]:  # fmt: skip
    """SmolLM2 fine-tuned to write the semantic codes of ``data`` (a ``NextItemData``)."""
    model = build_code_lm(scheme_codebook(data, SCHEME, seed), seed)
    histories, targets = examples(data.sequences, positions=positions, seed=seed)
    batches = TensorBatcher(model.encode(histories, targets), BATCH, shuffle=True, seed=seed)
    valid = valid_histories(data), [int(t) for t in data.seq.valid_target.tolist()]
    start, epoch = time.perf_counter(), iter(range(1, epochs + 1))

    def valid_fn(m: CodeLM) -> float:  # prints progress: an epoch takes minutes
        loss = validation_loss(m, *valid)
        print(f"[{MODEL}] seed {seed} epoch {next(epoch)}/{epochs}: validation loss {loss:.4f} "
              f"({time.perf_counter() - start:.0f} s)", flush=True)  # fmt: skip
        return loss

    history = fit(model, batches, epochs=epochs, lr=lr, mode="min", patience=PATIENCE,
                  valid_fn=valid_fn, amp=True, device="cpu", progress=False,
                  seed=seed)  # fmt: skip
    return model.eval(), history


def code_lm_scores(model: CodeLM, num_items: int):
    """A ``score_fn`` for ``evaluate_next_item``: the beam search's top 10 (bf16 autocast)."""

    def scores(histories):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return model.scores(list(histories), num_items, beams=BEAMS, k=10)

    return scores


def run_code_lm(data, seeds: Sequence[int], *, epochs: int = EPOCHS) -> pd.DataFrame:
    """Per seed: the test metrics of the fine-tuned SmolLM2, its training seconds and epochs."""

    rows = []
    for seed in seeds:
        start = time.perf_counter()
        model, history = train_code_lm(data, seed, epochs=epochs)
        train_s = time.perf_counter() - start
        metrics = next_item_metrics(code_lm_scores(model, data.seq.num_items), data.histories, data)
        rows.append({"model": MODEL, "seed": seed, "train_s": train_s, **metrics,
                     **convergence(history, epochs)})  # fmt: skip
        log.info("seed %d %s hr@10 %.4f (%d epochs, %.0fs)", seed, MODEL, metrics["hr@10"],
                 len(history.epochs), train_s)  # fmt: skip
    return pd.DataFrame(rows)
