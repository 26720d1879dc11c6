"""A pretrained language model that writes item codes: the LM-initialised generative recommender.

SmolLM2-135M (:func:`mtrec.models.llm.load_language_model`) learns to continue the prompt
"Films watched: <codes of the last films> Next film:" with the code of the next film. Each item
code token (``c0_3``, ``c1_12``, ``c2_0``: the semantic ids of :mod:`mtrec.models.generative.ids`)
is **added to the vocabulary** as a new token with its own embedding row, initialised from the
mean and spread of the pretrained embeddings (Hewitt, "Initializing New Word Embeddings for
Pretrained Language Models", 2021); the output layer is tied to these rows, as SmolLM2 ties its
own. Fine-tuning trains the new rows and LoRA adapters on every linear layer
(:func:`mtrec.models.llm.add_lora` with :data:`TARGETS`, applied by the caller); the 134.5M
pretrained weights stay frozen. This is the
recipe of LC-Rec (Zheng et al., "Adapting Large Language Models by Integrating Collaborative
Semantics for Recommendation", ICDE 2024) and of TIGER's semantic ids (Rajput et al., NeurIPS
2023), at the size of a laptop.

Decoding is constrained by the prefix trie of the codes (:class:`PrefixTrie`): at each step only
tokens that still lead to an unseen catalogue item are scored, so every answer is a real item
and never one the user has seen. :meth:`CodeLM.top_items` runs a beam search over the trie;
like P5, each step's distribution is normalised over its level's tokens.

Layout of one row (left-padded)::

    [pad …] Films watched: c0_a c1_b c2_c … c0_x c1_y c2_z  Next film: | c0 c1 (c2)
                          └──── last ``history`` items, 3 tokens each ────┘   └ target code ┘
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mtrec.checks import check_int
from mtrec.models.generative.codes import ItemCodebook, PrefixTrie

__all__ = ["PROMPT", "TARGETS", "CodeLM"]

PROMPT = ("Films watched:", " Next film:")  # the words around the history's codes
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class CodeLM(nn.Module):
    """A causal LM + new code tokens, scoring and decoding item codes.

    Args:
        lm: a causal language model, as it should train: e.g.
            ``add_lora(load_language_model()[0], targets=TARGETS)`` (only the adapters and the
            new rows train), or a plain model (every weight trains: full fine-tuning).
        tokenizer: its tokenizer, fresh from the loader; the code tokens are added to it.
        codebook: item → code tokens (every code of the same length).
        history: how many of the latest items a prompt names (>= 1).

    Batch keys (:meth:`encode`): ``input_ids``, ``attention_mask`` (B, L) and, for :meth:`loss`,
    ``target`` (B, code length): each target token's index within its level.
    """

    def __init__(self, lm: nn.Module, tokenizer: Any, codebook: ItemCodebook, *,
                 history: int = 8) -> None:  # fmt: skip
        super().__init__()
        self.history = check_int(history, "history", min=1)
        self.codebook, self.tokenizer = codebook, tokenizer
        self.vocab = int(lm.get_input_embeddings().weight.shape[0])
        tokens = codebook.tokens()  # sorted, distinct
        if len(tokenizer) != self.vocab:
            raise ValueError(
                f"the tokenizer has {len(tokenizer)} tokens and the model {self.vocab} embedding "
                "rows; pass a fresh tokenizer from load_language_model() (one that has no added "
                "tokens yet) with its model"
            )
        row = {t: r for r, t in enumerate(tokens)}
        codes = {item: tuple(row[t] for t in code) for item, code in codebook.codes.items()}
        levels = [sorted({c[d] for c in codes.values()}) for d in range(codebook.code_length)]
        if sum(map(len, levels)) != len(tokens):
            raise ValueError("a code token appears at two levels; name each level's tokens apart")
        tokenizer.add_tokens(tokens, special_tokens=True)  # ids vocab, vocab + 1, … in order
        ids = tokenizer.convert_tokens_to_ids(tokens)
        if ids != list(range(self.vocab, self.vocab + len(tokens))):
            raise ValueError(
                f"the tokenizer gave the {len(tokens)} code tokens ids {ids[:3]}…, not "
                f"{self.vocab}…; a token of the codebook is already a word of the tokenizer: name "
                "the code tokens differently"
            )
        self.column = [0] * len(tokens)  # row → index within its level
        for rows in levels:
            for index, r in enumerate(rows):
                self.column[r] = index
        self.levels = [torch.tensor(rows) for rows in levels]
        self.item_rows = codes  # item → code rows
        self.trie = PrefixTrie(codes)
        self.items = {code: item for item, code in codes.items()}
        base = lm.get_input_embeddings().weight.detach().float()
        init = base.mean(0) + torch.randn(len(tokens), base.shape[1]) * base.std(0)
        self.code_embedding = nn.Parameter(init)  # the new rows of the vocabulary (tied output)
        self.lm = lm
        self.prefix = tokenizer(PROMPT[0], add_special_tokens=False)["input_ids"]
        self.suffix = tokenizer(PROMPT[1], add_special_tokens=False)["input_ids"]
        self.pad = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)

    @property
    def code_length(self) -> int:
        return self.codebook.code_length

    def prompt_ids(self, history: Sequence[int], target: int | None = None) -> list[int]:
        """Token ids of one prompt (and of its target code but the last token, to train on)."""
        recent = [int(i) for i in history][-self.history :]
        self.codebook.check_known(recent, "history items")
        ids = [*self.prefix]
        for item in recent:
            ids += [self.vocab + r for r in self.item_rows[item]]
        ids += self.suffix
        if target is not None:
            ids += [self.vocab + r for r in self.item_rows[int(target)][:-1]]
        return ids

    def encode(self, histories: Sequence[Sequence[int]],
               targets: Sequence[int] | None = None) -> dict[str, Tensor]:  # fmt: skip
        """Left-padded ``input_ids`` and ``attention_mask``; with ``targets``, also ``target``."""
        if targets is not None:
            if len(targets) != len(histories):
                raise ValueError(
                    f"need one target per history, got {len(targets)} targets for "
                    f"{len(histories)} histories"
                )
            self.codebook.check_known(targets, "target items")
        rows = [self.prompt_ids(h, None if targets is None else t)
                for h, t in zip(histories, targets or [None] * len(histories))]  # fmt: skip
        width = max(map(len, rows))
        ids = torch.full((len(rows), width), self.pad, dtype=torch.long)
        mask = torch.zeros(len(rows), width, dtype=torch.long)
        for r, row in enumerate(rows):
            ids[r, width - len(row) :] = torch.tensor(row)
            mask[r, width - len(row) :] = 1
        out = {"input_ids": ids, "attention_mask": mask}
        if targets is not None:
            out["target"] = torch.tensor(
                [[self.column[r] for r in self.item_rows[int(t)]] for t in targets]
            )
        return out

    def _embed(self, ids: Tensor) -> Tensor:
        words = self.lm.get_input_embeddings()(ids.clamp(max=self.vocab - 1))
        codes = self.code_embedding[(ids - self.vocab).clamp(min=0)].to(words.dtype)
        return torch.where((ids >= self.vocab)[..., None], codes, words)

    def _hidden(self, ids: Tensor, mask: Tensor, positions: Tensor | None = None,
                cache: Any = None) -> Any:  # fmt: skip
        """The transformer's output; ``positions`` default to the left-padded rows' own."""
        if positions is None:
            positions = (mask.cumsum(1) - 1).clamp(min=0)  # count real tokens only
        model = self.lm.get_base_model() if hasattr(self.lm, "get_base_model") else self.lm
        decoder = model.model  # the transformer under the LM head (a LoRA model: its base's)
        return decoder(inputs_embeds=self._embed(ids), attention_mask=mask, position_ids=positions,
                       past_key_values=cache, use_cache=cache is not None)  # fmt: skip

    def level_log_probs(self, hidden: Tensor, level: int) -> Tensor:
        """(…, tokens of ``level``) log-probabilities, normalised over that level's tokens."""
        weight = self.code_embedding[self.levels[level].to(hidden.device)]
        return (hidden.float() @ weight.T).log_softmax(dim=-1)

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """Mean cross-entropy of the target code's tokens, each over its level (teacher forcing)."""
        for key in ("input_ids", "attention_mask", "target"):
            if key not in batch:
                raise KeyError(
                    f"loss needs batch[{key!r}]; build the batch with encode(h, targets)"
                )
        mask, target = batch["attention_mask"], batch["target"]
        hidden = self._hidden(batch["input_ids"], mask).last_hidden_state
        hidden = hidden[:, -self.code_length :]  # the states that predict each code token
        return torch.stack([
            F.nll_loss(self.level_log_probs(hidden[:, t], t), target[:, t])
            for t in range(self.code_length)
        ]).mean()  # fmt: skip

    @torch.no_grad()
    def top_items(self, histories: Sequence[Sequence[int]], *, k: int = 10, beams: int = 32,
                  exclude: Sequence[Sequence[int]] | None = None,
                  users_per_chunk: int = 16) -> list[list[tuple[int, float]]]:  # fmt: skip
        """Trie-constrained beam search: per history, up to ``k`` (item, log-probability) pairs.

        Every token allowed by the trie is scored at each step; the ``beams`` best prefixes
        (per user) go on to the next step, and the last step scores every complete code under
        them. Items in ``exclude`` (default: the history itself) are never written.
        ``users_per_chunk`` histories are decoded together: their key/value cache grows with
        users × beams (SmolLM2: about 0.8 MB per row at 8 films), so the chunk bounds memory.
        """
        k, beams = check_int(k, "k", min=1), check_int(beams, "beams", min=1)
        chunk = check_int(users_per_chunk, "users_per_chunk", min=1)
        exclude = histories if exclude is None else exclude
        if len(exclude) != len(histories):
            raise ValueError(f"exclude needs one list per history, got {len(exclude)} for "
                             f"{len(histories)}")  # fmt: skip
        return [row for s in range(0, len(histories), chunk)
                for row in self._beam_search(histories[s : s + chunk], exclude[s : s + chunk],
                                             k, beams)]  # fmt: skip

    def _beam_search(self, histories: Sequence[Sequence[int]], exclude: Sequence[Sequence[int]],
                     k: int, beams: int) -> list[list[tuple[int, float]]]:  # fmt: skip
        banned = [self.trie.banned_counts([int(i) for i in seen]) for seen in exclude]
        enc = self.encode(histories)
        mask = enc["attention_mask"]
        lengths = mask.sum(1)
        out = self._hidden(enc["input_ids"], mask, cache=_cache())
        cache, hidden = out.past_key_values, out.last_hidden_state[:, -1]
        owner, prefixes, score = (
            list(range(len(histories))),
            [()] * len(histories),
            [0.0] * len(histories),
        )
        for t in range(self.code_length):
            logp = self.level_log_probs(hidden, t).cpu()
            found: list[list[tuple[float, int, tuple[int, ...]]]] = [[] for _ in histories]
            for r, (user, prefix) in enumerate(zip(owner, prefixes)):
                for token in self.trie.allowed(prefix, banned[user]):
                    value = score[r] + float(logp[r, self.column[token]])
                    found[user].append((value, r, (*prefix, token)))
            if t == self.code_length - 1:
                return [[(self.items[code], value) for value, _, code in sorted(rows, reverse=True)[:k]]
                        for rows in found]  # fmt: skip
            kept = [row for rows in found for row in sorted(rows, reverse=True)[:beams]]
            parents = torch.tensor([r for _, r, _ in kept])
            owner = [owner[r] for _, r, _ in kept]
            score, prefixes = [v for v, _, _ in kept], [code for _, _, code in kept]
            cache.batch_select_indices(parents)
            mask = torch.cat([mask[parents], torch.ones(len(kept), 1, dtype=mask.dtype)], dim=1)
            token = torch.tensor([[self.vocab + code[-1]] for code in prefixes])
            position = (lengths[torch.tensor(owner)] + t)[:, None]
            out = self._hidden(token, mask, position, cache)
            cache, hidden = out.past_key_values, out.last_hidden_state[:, -1]
        raise AssertionError("unreachable: the last level returns")

    def scores(self, histories: Sequence[Sequence[int]], num_items: int, *, beams: int = 32,
               k: int = 10) -> Tensor:  # fmt: skip
        """(B, num_items + 1) scores for ``evaluate_next_item``: the log-probability of each of
        the ``k`` decoded items, -inf for every other item (the beam search ranks only these)."""
        out = torch.full((len(histories), num_items + 1), float("-inf"))
        for row, found in enumerate(self.top_items(histories, k=k, beams=beams)):
            for item, value in found:
                out[row, item] = value
        return out


def _cache() -> Any:
    from transformers import DynamicCache

    return DynamicCache()
