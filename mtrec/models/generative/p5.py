"""P5-style generative recommendation: one T5 text-to-text model over prompts for several tasks.

Geng, Liu, Fu, Ge and Zhang, "Recommendation as Language Processing (RLP): A Unified Pretrain,
Personalized Prompt & Predict Paradigm (P5)", RecSys 2022. Items are written as RANDOM code
tokens (Hua, Xu, Ge and Zhang, "How to Index Item IDs for Recommendation Foundation Models",
SIGIR-AP 2023, show that consecutive ids leak the interaction order), and item codes are decoded
under a prefix-trie constraint so only valid, unseen items come out. Codes, tokenizer and trie:
:mod:`~mtrec.models.generative.codes`; beam decoding and full ranking:
:mod:`~mtrec.models.generative.p5_answers`; prompts: :mod:`~mtrec.models.generative.prompts`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from transformers import PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

from mtrec.models.generative import p5_answers
from mtrec.models.generative.codes import ItemCodebook, PrefixTrie, build_tokenizer

__all__ = ["P5", "ItemCodebook", "P5Config", "PrefixTrie", "build_tokenizer"]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class P5Config:
    """P5 hyper-parameters (a tiny T5 trained from scratch unless ``pretrained`` is set)."""

    d_model: int = 128  # T5 width
    num_layers: int = 2  # encoder layers
    num_decoder_layers: int = 2  # decoder layers
    num_heads: int = 4  # attention heads (d_kv = d_model / num_heads)
    d_ff: int = 256  # feed-forward width
    dropout: float = 0.1  # T5 dropout rate
    code_length: int = 1  # tokens per item code (2 = a two-level random code, a real trie;
    # the schemes of mtrec.models.generative.ids use ids.CODE_LENGTH)
    max_source_len: int = 64  # encoder context in tokens; histories are cut from the oldest
    max_target_len: int = 24  # decoder length in tokens (item code, rating, or explanation)
    pretrained: str | None = None  # a seq2seq checkpoint name or path to start from (optional)

    def __post_init__(self) -> None:
        if self.d_model % self.num_heads:
            raise ValueError(
                f"d_model {self.d_model} must be divisible by num_heads {self.num_heads}"
            )
        if not 1 <= self.code_length <= 8:
            raise ValueError(
                f"code_length must be 1..8 tokens per item, got {self.code_length} (random codes: "
                "1 or 2; other schemes: mtrec.models.generative.ids.CODE_LENGTH)"
            )
        if self.max_source_len < 8 or self.max_target_len < self.code_length + 1:
            raise ValueError("max_source_len must be >= 8 and max_target_len > code_length")

    @classmethod
    def tiny(cls) -> P5Config:
        return cls(d_model=32, num_heads=2, d_ff=64, num_layers=1, num_decoder_layers=1)


class P5(nn.Module):
    """T5ForConditionalGeneration + word-level tokenizer + random item codebook + prefix trie.

    Batch keys for ``loss``: ``input_ids`` (B, Ls), ``attention_mask`` (B, Ls), ``labels``
    (B, Lt) with -100 on padding.
    """

    def __init__(
        self, config: P5Config, tokenizer: PreTrainedTokenizerFast, codebook: ItemCodebook
    ) -> None:
        super().__init__()
        if codebook.code_length != config.code_length:
            raise ValueError(
                f"the codebook writes {codebook.code_length} tokens per item but P5Config."
                f"code_length is {config.code_length}; build both with the same length"
            )
        self.config, self.tokenizer, self.codebook = config, tokenizer, codebook
        special = {"pad_token_id": 0, "eos_token_id": 1, "decoder_start_token_id": 0}
        if config.pretrained:
            self.t5 = T5ForConditionalGeneration.from_pretrained(config.pretrained)
            self.t5.resize_token_embeddings(len(tokenizer))  # our vocabulary replaces theirs
            for key, value in special.items():
                setattr(self.t5.config, key, value)
                setattr(self.t5.generation_config, key, value)
        else:
            t5_config = T5Config(
                vocab_size=len(tokenizer), d_model=config.d_model, d_kv=config.d_model // config.num_heads,
                d_ff=config.d_ff, num_layers=config.num_layers,
                num_decoder_layers=config.num_decoder_layers, num_heads=config.num_heads,
                dropout_rate=config.dropout, feed_forward_proj="relu", tie_word_embeddings=True,
                **special,
            )  # fmt: skip
            self.t5 = T5ForConditionalGeneration(t5_config)
        self.code_ids = {
            item: tuple(tokenizer.convert_tokens_to_ids(list(code)))
            for item, code in codebook.codes.items()
        }
        self.trie = PrefixTrie(self.code_ids)
        self.item_ids = torch.tensor(sorted(self.code_ids))  # (I,) every item, ascending
        self.item_tokens = torch.tensor([self.code_ids[int(i)][0] for i in self.item_ids])  # (I,)
        self.popularity: dict[int, float] = {}  # item → training count, for cold-user fallback

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """Token cross-entropy of the target text (teacher forcing)."""
        for key in ("input_ids", "attention_mask", "labels"):
            if key not in batch:
                raise KeyError(f"P5 batches need key {key!r}; got {sorted(batch)}")
        mask, labels = batch["attention_mask"], batch["labels"]
        src_len = int(mask.sum(dim=1).max())  # trim padding columns: fixed-length batches
        tgt_len = int((labels != -100).sum(dim=1).max())  # carry mostly padding
        out = self.t5(
            input_ids=batch["input_ids"][:, :src_len].contiguous(),
            attention_mask=mask[:, :src_len].contiguous(),
            labels=labels[:, :tgt_len].contiguous(),
        )  # fmt: skip
        return out.loss

    def encode(
        self, texts: Sequence[str], max_len: int, *, target: bool = False
    ) -> dict[str, Tensor]:
        """Tokenise ``texts`` (+ ``</s>``) to fixed-length (N, max_len) tensors."""
        enc = self.tokenizer(
            [t + " </s>" for t in texts], padding="max_length", truncation=True,
            max_length=max_len, return_tensors="pt",
        )  # fmt: skip
        if not target:
            return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
        return {"labels": enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)}

    def generate_items(
        self, prompts: Sequence[str], exclude: Sequence[Sequence[int]], *, k: int = 10,
        candidates: Sequence[Sequence[int]] | None = None, explain: bool = False,
    ) -> tuple[list[list[int]], list[list[str]]]:  # fmt: skip
        """Beam-decode k item codes per prompt under the trie: valid items, none in ``exclude``
        (:func:`~mtrec.models.generative.p5_answers.generate_items`, which documents the args).

        Returns:
            (B lists of k item ids in beam order, B lists of k decoded texts).
        """
        return p5_answers.generate_items(self, prompts, exclude, k=k, candidates=candidates,
                                         explain=explain)  # fmt: skip

    def init_item_embeddings(self, vectors: Tensor) -> None:
        """Start the item-code token embeddings from collaborative item vectors.

        The rows of ``vectors`` (N+1, k), indexed by item id, with k <= d_model (zero-padded),
        are copied into the shared input/output embedding of each item's code token, rescaled to
        the mean norm of the embeddings they replace. This puts collaborative knowledge into the
        token space the T5 reads and writes (the idea of CoLLM: Zhang et al., "Collaborative
        Large Language Model for Recommender Systems", 2023); everything is still trained after.
        Needs one token per item (``code_length`` 1).
        """
        if self.config.code_length != 1:
            raise ValueError(
                "init_item_embeddings needs one token per item (P5Config.code_length=1), got "
                f"code_length={self.config.code_length}"
            )
        items, tokens = self.item_ids, self.item_tokens  # one token per item
        d_model = self.t5.shared.weight.shape[1]
        if vectors.ndim != 2 or vectors.shape[0] <= int(items.max()) or vectors.shape[1] > d_model:
            raise ValueError(
                f"vectors must be (N+1, k) with N >= {int(items.max())} (indexed by item id) and "
                f"k <= d_model={d_model}, got {tuple(vectors.shape)}"
            )
        with torch.no_grad():
            weight = self.t5.shared.weight  # (V, D), tied with the output layer
            new = torch.zeros(len(items), d_model, dtype=weight.dtype, device=weight.device)
            new[:, : vectors.shape[1]] = vectors[items].to(new)
            scale = weight[tokens].norm(dim=1).mean() / new.norm(dim=1).mean().clamp_min(1e-12)
            weight[tokens] = new * scale

    def scores(self, prompts: Sequence[str], exclude: Sequence[Sequence[int]]) -> Tensor:
        """(B, N+1) log-probabilities of every item as the answer to each prompt, excluded items
        -inf: a full ranking (:func:`~mtrec.models.generative.p5_answers.full_ranking`)."""
        return p5_answers.full_ranking(self, prompts, exclude)

    @torch.no_grad()
    def predict_ratings(self, prompts: Sequence[str]) -> Tensor:
        """(B,) expected rating Σ r · p(r) over the tokens "1".."5" at the first decoded step."""
        self.eval()
        device = next(self.parameters()).device
        enc = {k: v.to(device) for k, v in self.encode(prompts, self.config.max_source_len).items()}
        start = torch.zeros(len(prompts), 1, dtype=torch.long, device=device)
        logits = self.t5(**enc, decoder_input_ids=start, use_cache=False).logits[:, 0]  # (B, V)
        ids = self.tokenizer.convert_tokens_to_ids([str(r) for r in range(1, 6)])
        probs = logits[:, ids].softmax(dim=-1)  # (B, 5)
        return (probs * torch.arange(1, 6, device=probs.device)).sum(dim=-1).cpu()
