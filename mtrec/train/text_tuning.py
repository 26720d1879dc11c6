"""Fine-tuning a sentence encoder as the item text tower of a content recommender.

:class:`mtrec.models.cf.content.ContentRecommender` scores an item by the cosine between a user's
profile (the mean of their training items' vectors) and the item's text vector. Here the encoder
is trained in that geometry on the training interactions: the profile p_b of user b, built from
their training items less one held-out training item i_b, must point at v_{i_b} rather than at
the other users' held-out items (in-batch negatives; an item b also rated is left out):

    L = −(1/B) Σ_b log [ exp(cos(p_b, v_{i_b}) / τ) / Σ_c exp(cos(p_b, v_{i_c}) / τ) ]

InfoNCE (van den Oord, Li and Vinyals, arXiv 2018) with in-batch negatives (Henderson et al.,
arXiv 2017); each logit also loses the log probability that its item is drawn, so popular items
are not over-penalised as negatives (Yi et al., RecSys 2019). Held-out items are encoded with
gradient; profiles come from a memory bank of item vectors (Wu et al., CVPR 2018) refreshed
without gradient every ``eval_every`` steps, so a step encodes B texts, not B histories. Mode
``"lora"`` trains rank-r adapters on the attention projections (Hu et al., ICLR 2022; peft),
``"full"`` every weight. Vectors are mean-pooled over real tokens and L2-normalised, as the
frozen sentence encoder's.

Only items with a training interaction enter the loss (as held-out items or in the bank), so a
cold item's text is never trained on; the tuned encoder reads it afterwards, which is the
cold-start promise of content. Shapes: B users per step, I items, L tokens, D width.
"""

from __future__ import annotations

import copy
import logging
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mtrec.checks import check_choice, check_finite, check_float, check_int, check_tensor
from mtrec.utils import set_seed

log = logging.getLogger(__name__)

MODES = ("lora", "full")
DEFAULT_LR = {"lora": 3e-3, "full": 1e-4}  # AdamW learning rate per mode


@dataclass(frozen=True)
class TextTuningConfig:
    """How the text tower is trained."""

    mode: str = "lora"  # "lora" (adapters only) or "full" (every weight)
    steps: int = 40  # optimiser steps at most
    users_per_batch: int = 64  # B users per step, one held-out item text each
    temperature: float = 0.1  # τ of the InfoNCE softmax
    lr: float | None = None  # AdamW learning rate; None: DEFAULT_LR[mode]
    rank: int = 8  # LoRA rank r
    alpha: float = 16.0  # LoRA scale numerator (update × alpha / r)
    targets: tuple[str, ...] = ("query", "value")  # linear layers given adapters (BERT names)
    eval_every: int = 20  # steps between bank refreshes and validation checks
    patience: int = 1  # stop after this many checks without improvement
    max_length: int = 64  # tokens per item text (special tokens included)
    seed: int = 0  # batch sampling, dropout and adapter initialisation

    def __post_init__(self) -> None:
        check_choice(self.mode, "mode", MODES)
        for name in ("steps", "users_per_batch", "rank", "eval_every", "patience"):
            check_int(getattr(self, name), name, min=1)
        check_int(self.max_length, "max_length", min=2)
        check_int(self.seed, "seed", min=0)
        check_float(self.temperature, "temperature", min=1e-4)
        check_float(self.alpha, "alpha", min=1e-8)
        if self.lr is not None:
            check_float(self.lr, "lr", min=1e-12)
        if isinstance(self.targets, str) or not self.targets:
            raise ValueError(f"targets must be a non-empty tuple of names, got {self.targets!r}")

    @classmethod
    def tiny(cls, mode: str = "lora") -> TextTuningConfig:
        return cls(mode=mode, steps=4, users_per_batch=4, eval_every=2, lr=1e-2)


@dataclass
class TunedText:
    """What :func:`tune_text_encoder` returns."""

    vectors: Tensor  # (I, D) unit item vectors of the selected step, every item (cold ones too)
    step: int  # the optimiser step whose vectors were kept (0: the untrained encoder)
    model: nn.Module  # the encoder after the last step (a copy: the caller's model is untouched)
    trainable: int  # trained parameters
    total: int  # all parameters (adapters included)
    seconds: float  # wall time of the steps and checks
    trained_items: Tensor  # sorted ids of the items encoded with gradient (held-out items)
    losses: list[float] = field(default_factory=list)  # training loss of each step
    checks: list[tuple[int, float]] = field(default_factory=list)  # (step, validation score)


def tokenize(tokenizer: Any, texts: Sequence[str], max_length: int = 64) -> dict[str, Tensor]:
    """Every text once: ``input_ids`` and ``attention_mask``, (I, L) padded to the longest."""
    if isinstance(texts, str) or len(texts) == 0:
        raise ValueError("texts must be a non-empty sequence of item texts, one per item column")
    out = tokenizer(list(texts), truncation=True, max_length=max_length, padding=True,
                    return_tensors="pt")  # fmt: skip
    return {"input_ids": out["input_ids"], "attention_mask": out["attention_mask"]}


def embed(model: nn.Module, tokens: dict[str, Tensor], items: Tensor) -> Tensor:
    """(N,) item ids → (N, D) unit vectors, padding trimmed to the longest of these texts.

    Mean over real tokens then L2 norm, as :class:`mtrec.extractors.text.TextEncoder` does for
    all-MiniLM-L6-v2 (the tests check that the untrained encoder gives its vectors).
    """
    mask = tokens["attention_mask"][items]  # (N, L)
    length = int(mask.sum(dim=1).max())
    mask = mask[:, :length].unsqueeze(-1)  # (N, L', 1), tokens are right-padded
    hidden = model(input_ids=tokens["input_ids"][items, :length],
                   attention_mask=mask.squeeze(-1)).last_hidden_state  # (N, L', D)  # fmt: skip
    pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)  # (N, D)
    return F.normalize(pooled.float(), dim=-1)


@torch.no_grad()
def encode_items(model: nn.Module, tokens: dict[str, Tensor], *, batch_size: int = 128) -> Tensor:
    """Every item's (I, D) unit vector, in eval mode, texts of similar length batched together."""
    was_training = model.training
    model.eval()
    order = tokens["attention_mask"].sum(dim=1).argsort(descending=True)  # (I,)
    parts = [embed(model, tokens, order[s : s + batch_size]) for s in range(0, len(order), batch_size)]  # fmt: skip
    model.train(was_training)
    stacked = torch.cat(parts)  # (I, D) in length order
    return torch.empty_like(stacked).index_put_((order,), stacked)


class ProfileSampler:
    """Batches of users with one held-out training item each, from a (U, I) training matrix.

    Keys: ``user_ids`` (B,) long rows; ``item_ids`` (B,) long, each user's held-out item column;
    ``profile_weights`` (B, I) float, 1 on the user's other training items (the profile's items);
    ``false_negatives`` (B, B) bool, True where user b also rated c's held-out item (left out of
    b's softmax); ``log_q`` (B,) log probability that each held-out item is drawn. Only users with
    at least two training items are drawn.
    """

    def __init__(self, interactions: Tensor, batch_size: int, *, seed: int = 0) -> None:
        self.seen = interactions > 0  # (U, I)
        counts = self.seen.sum(dim=1)  # (U,)
        self.users = (counts >= 2).nonzero().squeeze(1)
        if len(self.users) == 0:
            raise ValueError(
                "no user has two training interactions, so no (profile, item) pair can be drawn; "
                "pass the training interaction matrix (U, I) with 1 for each rated item"
            )
        # row-major order: each user's item columns form one run, starting at starts[u]
        self.columns = self.seen.nonzero(as_tuple=True)[1]  # (N,) item column of each rating
        self.starts, self.counts = torch.cumsum(counts, 0) - counts, counts  # (U,), (U,)
        share = self.seen[self.users].float() / counts[self.users, None]  # (U', I)
        self.log_q = (share.mean(dim=0) + 1e-12).log()  # (I,) log P(item drawn as positive)
        self.batch_size = min(batch_size, len(self.users))
        self.generator = torch.Generator().manual_seed(seed)

    def sample(self) -> dict[str, Tensor]:
        B, g = self.batch_size, self.generator
        users = self.users[torch.randperm(len(self.users), generator=g)[:B]]  # (B,)
        position = (torch.rand(B, generator=g) * self.counts[users]).long()  # (B,)
        items = self.columns[self.starts[users] + position]  # (B,)
        seen = self.seen[users]  # (B, I)
        weights = seen.float().index_put((torch.arange(B), items), torch.zeros(B))  # (B, I)
        false = seen[:, items] & ~torch.eye(B, dtype=torch.bool)  # (B, B)
        return {"user_ids": users, "item_ids": items, "profile_weights": weights,
                "false_negatives": false, "log_q": self.log_q[items]}  # fmt: skip


def contrastive_loss(model: nn.Module, tokens: dict[str, Tensor], batch: dict[str, Tensor],
                     bank: Tensor, *, temperature: float) -> Tensor:  # fmt: skip
    """InfoNCE of users' profiles against their held-out items, in-batch negatives (a scalar).

    Profiles are built from ``bank`` (I, D), item vectors of the encoder's last refresh without
    gradient (rows of items without training interactions are zero); the held-out items are
    encoded now, with gradient. Both are centred on the bank's mean over its non-zero rows,
    as :class:`~mtrec.models.cf.content.ContentRecommender` centres before the cosine.
    """
    items, unique = batch["item_ids"], batch["item_ids"].unique(return_inverse=True)
    centre = bank[bank.abs().sum(dim=1) > 0].mean(dim=0)  # (D,)
    profiles = F.normalize(batch["profile_weights"] @ (bank - centre), dim=-1)  # (B, D)
    vectors = F.normalize(embed(model, tokens, unique[0])[unique[1]] - centre, dim=-1)  # (B, D)
    logits = profiles @ vectors.T / temperature - batch["log_q"][None, :]  # (B, B)
    logits = logits.masked_fill(batch["false_negatives"], float("-inf"))
    return F.cross_entropy(logits, torch.arange(len(items), device=logits.device))


def prepare(model: nn.Module, config: TextTuningConfig) -> nn.Module:
    """A copy of ``model`` set up for ``config.mode``: LoRA adapters only, or every weight."""
    model = copy.deepcopy(model)
    if config.mode == "full":
        return model.requires_grad_(True)
    known = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, nn.Linear)}
    unknown = [t for t in config.targets if t not in known]
    if unknown:
        raise ValueError(f"targets {unknown} are not linear layers of {type(model).__name__}; "
                         f"pick among {sorted(known)}")  # fmt: skip
    try:  # the optional llm extra, as mtrec.models.llm.lora
        from peft import LoraConfig, get_peft_model
    except ImportError as error:
        raise ImportError("mode='lora' needs peft: pip install 'mtrec[llm]'") from error

    lora = LoraConfig(r=config.rank, lora_alpha=config.alpha, target_modules=list(config.targets),
                      lora_dropout=0.0, bias="none")  # fmt: skip
    with warnings.catch_warnings():  # peft asks transformers 5 a question it has renamed
        warnings.filterwarnings("ignore", ".*is_gradient_checkpointing", FutureWarning)
        return get_peft_model(model, lora)


def tune_text_encoder(
    model: nn.Module,
    tokenizer: Any,
    texts: Sequence[str],
    interactions: Tensor,
    *,
    config: TextTuningConfig = TextTuningConfig(),
    valid_fn: Callable[[Tensor], float] | None = None,
) -> TunedText:
    """Train a copy of the sentence encoder ``model`` on the training ``interactions``.

    Args:
        model: a Hugging Face encoder (``last_hidden_state``), e.g. ``TextEncoder().model``.
        tokenizer: its tokenizer.
        texts: I item texts, one per interaction column (every item, cold ones included).
        interactions: (U, I) TRAINING matrix, > 0 where a user rated an item; never test rows.
        config: mode, steps, batch, temperature, LoRA settings.
        valid_fn: (I, D) vectors → validation score (higher is better), checked before training
            and every ``eval_every`` steps: the best check's vectors are kept (step 0: the
            untrained encoder's) and training stops after ``patience`` checks without
            improvement. None: the vectors after ``steps`` steps.

    Returns:
        The tuned item vectors and what the training cost (:class:`TunedText`).
    """
    check_tensor(interactions, "interactions", ndim=2)
    if interactions.numel() == 0 or not bool((interactions > 0).any()):
        raise ValueError(
            f"interactions {tuple(interactions.shape)} hold no interaction; pass the (U, I) "
            "training matrix with 1 (or a rating) for each rated item"
        )
    check_finite(interactions.float(), "interactions", fix="use 0 for 'no interaction'")
    if interactions.shape[1] != len(texts):
        raise ValueError(f"interactions have {interactions.shape[1]} item columns but there are "
                         f"{len(texts)} texts; pass one text per item column")  # fmt: skip
    set_seed(config.seed)
    tuned = prepare(model, config)
    device = next(tuned.parameters()).device  # tokens and batches follow the model
    tokens = {k: v.to(device) for k, v in tokenize(tokenizer, texts, config.max_length).items()}
    sampler = ProfileSampler(interactions, config.users_per_batch, seed=config.seed)
    warm = (interactions > 0).any(dim=0)[:, None].to(device)  # (I, 1) items rated in training
    params = list(tuned.parameters())
    trainable = sum(p.numel() for p in params if p.requires_grad)
    lr = DEFAULT_LR[config.mode] if config.lr is None else config.lr
    # fused: one kernel over every parameter (several times faster than the loop for "full")
    optimiser = torch.optim.AdamW([p for p in params if p.requires_grad], lr=lr, fused=True)
    start = time.perf_counter()
    best = vectors = encode_items(tuned, tokens)  # step 0: the untrained encoder
    checks = [(0, float(valid_fn(vectors)))] if valid_fn else []
    best_step, losses, positives, waited = 0, [], [], 0
    tuned.train()
    for step in range(1, config.steps + 1):
        batch = {k: v.to(device) for k, v in sampler.sample().items()}
        positives.append(batch["item_ids"].cpu())
        loss = contrastive_loss(
            tuned, tokens, batch, vectors * warm, temperature=config.temperature
        )
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
        if step % config.eval_every and step < config.steps:
            continue
        vectors = encode_items(tuned, tokens)  # the new bank (cold rows are zeroed when used)
        if valid_fn is None:
            best, best_step = vectors, step
            continue
        checks.append((step, float(valid_fn(vectors))))
        log.info("text tuning %s step %d: loss %.4f, valid %.4f", config.mode, step, losses[-1],
                 checks[-1][1])  # fmt: skip
        if checks[-1][1] > max(score for _, score in checks[:-1]):
            best, best_step, waited = vectors, step, 0
        elif (waited := waited + 1) >= config.patience:
            break
    return TunedText(best.cpu(), best_step, tuned.eval(), trainable, sum(p.numel() for p in params),
                     time.perf_counter() - start, torch.cat(positives).unique(), losses, checks)  # fmt: skip
