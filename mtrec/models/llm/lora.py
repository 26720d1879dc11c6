"""LoRA adapters on a pretrained language model: train a few low-rank matrices, freeze the rest.

Hu, Shen, Wallis, Allen-Zhu, Li, Wang, Wang and Chen, "LoRA: Low-Rank Adaptation of Large
Language Models", ICLR 2022. Each targeted linear layer ``y = W x`` becomes
``y = W x + (alpha / rank) · B A x`` with A (rank, D_in) random and B (D_out, rank) zero, so the
adapted model starts exactly equal to the base model and only A and B are trained. Built with
peft (the optional ``llm`` extra, imported only here).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

from torch import nn

from mtrec.checks import check_float, check_int, check_probability

__all__ = ["add_lora", "linear_names", "trainable_share"]


def linear_names(model: nn.Module) -> list[str]:
    """The distinct last name parts of the model's ``nn.Linear`` modules (LoRA's targets)."""
    return sorted({name.rsplit(".", 1)[-1] for name, m in model.named_modules()
                   if isinstance(m, nn.Linear)})  # fmt: skip


def add_lora(
    model: nn.Module,
    *,
    rank: int = 8,
    alpha: float = 16,
    dropout: float = 0.0,
    targets: Sequence[str] = ("q_proj", "v_proj"),
) -> nn.Module:
    """Wrap ``model`` with LoRA adapters on the linear layers named in ``targets``.

    ``model`` is changed in place (peft swaps the targeted layers for LoRA layers and freezes
    every base weight); the returned ``PeftModel`` wraps it and takes the same inputs. Before any
    training its outputs equal the base model's (B starts at zero).

    Args:
        model: a transformers model, e.g. from :func:`~mtrec.models.llm.load_language_model`.
        rank: the rank r of each update B A (>= 1).
        alpha: the scale numerator: the update is multiplied by ``alpha / rank`` (> 0).
        dropout: dropout on the adapter's input, in [0, 1).
        targets: last name parts of the linear layers to adapt (SmolLM2: ``q_proj``, ``k_proj``,
            ``v_proj``, ``o_proj``, ``gate_proj``, ``up_proj``, ``down_proj``).

    Returns:
        The ``PeftModel``; :func:`trainable_share` counts what it trains.
    """
    rank = check_int(rank, "rank", min=1)
    alpha = check_float(alpha, "alpha", min=0.0)
    if alpha == 0.0:
        raise ValueError("alpha must be > 0, got 0.0 (the update would be scaled to nothing)")
    dropout = check_probability(dropout, "dropout")
    if isinstance(targets, str) or not isinstance(targets, Sequence) or not targets:
        raise TypeError(
            f"targets must be a non-empty sequence of module names, got {targets!r}; e.g. "
            "('q_proj', 'v_proj')"
        )
    if any(".lora_" in name for name, _ in model.named_parameters()):
        raise ValueError("model already has LoRA adapters; pass the base model to add_lora")
    known = linear_names(model)
    unknown = [t for t in targets if not isinstance(t, str) or t not in known]
    if unknown:
        raise ValueError(
            f"targets {unknown} are not linear modules of {type(model).__name__}; its linear "
            f"module names are {known}; pick targets among them"
        )
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as error:
        raise ImportError("add_lora needs peft; install it: pip install 'mtrec[llm]'") from error
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout,
                        target_modules=list(targets), bias="none")  # fmt: skip
    with warnings.catch_warnings():  # peft asks transformers 5 a question it has renamed
        warnings.filterwarnings("ignore", ".*is_gradient_checkpointing", FutureWarning)
        return get_peft_model(model, config)


def trainable_share(model: nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts (tied weights counted once)."""
    params = list(model.parameters())  # unique tensors: a tied embedding appears once
    trainable = sum(p.numel() for p in params if p.requires_grad)
    return trainable, sum(p.numel() for p in params)
