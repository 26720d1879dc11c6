"""P5-style generative recommendation: one T5 text-to-text model over prompts for several tasks.

Geng, Liu, Fu, Ge and Zhang, "Recommendation as Language Processing (RLP): A Unified Pretrain,
Personalized Prompt & Predict Paradigm (P5)", RecSys 2022. Items are written as RANDOM code
tokens (Hua, Xu, Ge and Zhang, "How to Index Item IDs for Recommendation Foundation Models",
SIGIR-AP 2023, show that consecutive ids leak the interaction order), and item codes are decoded
under a prefix-trie constraint so only valid, unseen items come out. Codes, tokenizer and trie:
:mod:`p5_codes`; prompts: :mod:`p5_prompts`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from transformers import PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

from mtrec.checks import check_ids, check_int
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

    def _generate(self, prompts: Sequence[str], allowed_fn, *, beams: int, max_new: int) -> Tensor:
        enc = self.encode(prompts, self.config.max_source_len)
        device = next(self.parameters()).device
        out = self.t5.generate(
            input_ids=enc["input_ids"].to(device), attention_mask=enc["attention_mask"].to(device),
            num_beams=beams, num_return_sequences=beams, max_new_tokens=max_new, do_sample=False,
            prefix_allowed_tokens_fn=allowed_fn,
        )  # fmt: skip
        return out.cpu().view(len(prompts), beams, -1)  # (B, beams, Lt)

    @torch.no_grad()
    def generate_items(
        self, prompts: Sequence[str], exclude: Sequence[Sequence[int]], *, k: int = 10,
        candidates: Sequence[Sequence[int]] | None = None, explain: bool = False,
    ) -> tuple[list[list[int]], list[list[str]]]:  # fmt: skip
        """Beam-decode k item codes per prompt under the trie: valid items, none in ``exclude``.

        Args:
            prompts: B prompt strings.
            exclude: per prompt, item ids that must not come out (the user's history).
            candidates: per prompt, restrict decoding to these items (the choice task).
            explain: let free text follow the code (the explanation task).

        Returns:
            (B lists of k item ids in beam order, B lists of k decoded texts).
        """
        self.eval()
        if len(prompts) != len(exclude) or (candidates and len(candidates) != len(prompts)):
            raise ValueError(
                f"prompts, exclude (and candidates) need one entry per prompt, got {len(prompts)} "
                f"prompts, {len(exclude)} exclude lists"
                + (f", {len(candidates)} candidate lists" if candidates else "")
            )
        k = check_int(k, "k", min=1)
        if k > len(self.code_ids):  # beam search keeps k sequences per prompt: k = 10**6 is OOM
            raise ValueError(
                f"k={k} beams per prompt, but the catalogue holds only {len(self.code_ids)} items: "
                f"ask for k <= {len(self.code_ids)} (each prompt decodes k beams at once, and no "
                "more distinct items than the catalogue's can come out)"
            )
        exclude = self._exclusions(exclude)
        if candidates:
            for c in candidates:
                self.codebook.check_known(c, "candidates")
        tries = (
            [PrefixTrie({i: self.code_ids[i] for i in c}) for c in candidates]
            if candidates
            else None
        )
        banned = [
            (tries[b] if tries else self.trie).banned_counts(e) for b, e in enumerate(exclude)
        ]
        available = [  # per prompt: allowed items that are not excluded
            len(set(tries[b].codes if tries else self.code_ids) - {int(i) for i in e})
            for b, e in enumerate(exclude)
        ]
        if min(available, default=1) == 0:
            empty = [b for b, a in enumerate(available) if a == 0][:5]
            raise ValueError(
                f"nothing can be decoded for prompts {empty}: every allowed item is excluded "
                "(seen); pass fewer exclusions or more candidates"
            )
        cache: dict[tuple[int, tuple[int, ...]], Tensor] = {}
        length = self.config.code_length
        everything = torch.arange(len(self.tokenizer))

        def allowed(batch_id: int, sent: Tensor) -> Tensor:
            prefix = tuple(sent[1:].tolist())
            if len(prefix) >= length:
                return everything if explain else torch.tensor([1])
            key = (batch_id, prefix)
            if key not in cache:
                trie = tries[batch_id] if tries else self.trie
                cache[key] = torch.tensor(trie.allowed(prefix, banned[batch_id]) or [1])
            return cache[key]

        max_new = self.config.max_target_len if explain else length + 1
        out = self._generate(prompts, allowed, beams=k, max_new=max_new)  # (B, k, Lt)
        items = [[self._item(seq[1 : 1 + length]) for seq in row] for row in out.tolist()]
        texts = [self.tokenizer.batch_decode(row, skip_special_tokens=True) for row in out]
        if any(a < k for a in available):  # fewer items than beams: drop repeats and non-items
            short = sum(a < k for a in available)
            log.warning(
                "k=%d but %d prompt(s) have fewer allowed items; returning only the %s available",
                k, short, "items",
            )  # fmt: skip
            for b, row in enumerate(items):
                keep, seen = [], {int(i) for i in exclude[b]}
                for j, item in enumerate(row):
                    if item != -1 and item not in seen:
                        keep.append(j)
                        seen.add(item)
                items[b] = [row[j] for j in keep]
                texts[b] = [texts[b][j] for j in keep]
        return items, texts

    @staticmethod
    def _exclusions(exclude: Sequence[Sequence[int]]) -> list[list[int]]:
        """Each prompt's excluded item ids as ints; 2.7 is refused rather than read as item 2."""
        out = []
        for b, seen in enumerate(exclude):
            try:
                ids = check_ids(list(seen), f"exclude[{b}]")
            except (TypeError, ValueError, RuntimeError) as error:
                if isinstance(error, ValueError) and "integer ids" in str(error):
                    raise
                raise TypeError(
                    f"exclude[{b}] must be a list of integer item ids, got {str(seen)[:80]} "
                    f"({error}); pass the ids the codebook was built from"
                ) from None
            out.append(ids.flatten().tolist())
        return out

    def _item(self, code: list[int]) -> int:
        tokens = tuple(self.tokenizer.convert_ids_to_tokens(code))
        return self.codebook.items.get(tokens, -1)

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

    @torch.no_grad()
    def scores(self, prompts: Sequence[str], exclude: Sequence[Sequence[int]]) -> Tensor:
        """Log-probabilities of every item as the answer to each prompt: a full ranking.

        With one token per item, the constrained decoder's first step IS a distribution over
        items; reading it whole ranks all of them at the cost of one forward pass (beam search
        returns only the top few). With longer codes an item's score is the sum over its code
        of log p(token | prompt, earlier tokens), each step normalised over that level's tokens
        (the tokens the trie can allow there), see :meth:`_code_log_probs`. Excluded items, and
        ids that are not items, get -inf.

        Args:
            prompts: B prompt strings.
            exclude: per prompt, integer item ids to score -inf (ids that are not items, e.g.
                the padding id 0, are ignored).

        Returns:
            (B, N+1) scores indexed by item id (N = the largest item id).

        Raises:
            ValueError: an exclude list holds a fractional id, or excludes every item (its row
                would be all -inf: nothing left to rank).
        """
        self.eval()
        if len(prompts) != len(exclude):
            raise ValueError(
                f"prompts and exclude need one entry per prompt, got {len(prompts)} prompts and "
                f"{len(exclude)} exclude lists"
            )
        known = [
            sorted({i for i in seen if i in self.code_ids}) for seen in self._exclusions(exclude)
        ]
        full = [b for b, seen in enumerate(known) if len(seen) == len(self.code_ids)]
        if full:
            raise ValueError(
                f"exclude[{full[0]}] excludes every one of the {len(self.code_ids)} items, so row "
                f"{full[0]} of the scores would be all -inf (nothing left to rank; {len(full)} such "
                "row(s) in all); exclude fewer items, or leave out users who have seen the whole "
                "catalogue"
            )
        device = next(self.parameters()).device
        items, tokens = self.item_ids, self.item_tokens.to(device)
        enc = {k: v.to(device) for k, v in self.encode(prompts, self.config.max_source_len).items()}
        scores = torch.full((len(prompts), int(items.max()) + 1), float("-inf"))
        if self.config.code_length == 1:
            start = torch.zeros(len(prompts), 1, dtype=torch.long, device=device)
            logits = self.t5(**enc, decoder_input_ids=start, use_cache=False).logits[:, 0, tokens]
            scores[:, items] = logits.log_softmax(dim=-1).float().cpu()
        else:
            scores[:, items] = self._code_log_probs(enc).float().cpu()
        rows = torch.repeat_interleave(torch.arange(len(known)), torch.tensor([*map(len, known)]))
        scores[
            rows, torch.tensor([i for seen in known for i in seen], dtype=torch.long)
        ] = -torch.inf
        return scores

    def _code_log_probs(self, enc: dict[str, Tensor], users_per_chunk: int = 8) -> Tensor:
        """(B, I) log-probability of every item's whole code (items in ``item_ids`` order).

        The decoder runs once per distinct code prefix (not once per item): the hidden state at
        step t depends only on the first t tokens, so the prefixes of length ``code_length - 1``
        give every step's distribution for every item.
        """

        device = enc["input_ids"].device
        length = self.config.code_length
        codes = torch.tensor([self.code_ids[int(i)] for i in self.item_ids], device=device)
        prefixes, inverse = torch.unique(codes[:, :-1], dim=0, return_inverse=True)  # (P, L-1)
        decoder_in = torch.cat([torch.zeros_like(prefixes[:, :1]), prefixes], dim=1)  # (P, L)
        levels = [torch.unique(codes[:, t]) for t in range(length)]  # tokens of each level
        weight = self.t5.lm_head.weight  # (V, D)
        tied = self.t5.config.tie_word_embeddings
        hidden_all = self.t5.encoder(**enc).last_hidden_state  # (B, Ls, D)
        out = []
        for s in range(0, len(hidden_all), users_per_chunk):
            hidden = hidden_all[s : s + users_per_chunk]
            mask = enc["attention_mask"][s : s + users_per_chunk]
            b, p = len(hidden), len(prefixes)
            dec = self.t5.decoder(
                input_ids=decoder_in.repeat(b, 1),
                encoder_hidden_states=hidden.repeat_interleave(p, dim=0),
                encoder_attention_mask=mask.repeat_interleave(p, dim=0),
                use_cache=False,  # one pass over whole prefixes: a key/value cache only costs copies
            ).last_hidden_state.view(b, p, length, -1)  # (b, P, L, D)
            if tied:
                dec = dec * (self.t5.model_dim**-0.5)
            total = torch.zeros(b, len(codes), device=device)
            for t in range(length):
                logp = (dec[:, :, t] @ weight[levels[t]].T).log_softmax(dim=-1)  # (b, P, V_t)
                column = torch.searchsorted(
                    levels[t], codes[:, t].contiguous()
                )  # (I,) index within level
                total += logp[:, inverse, column]
            out.append(total)
        return torch.cat(out)

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
