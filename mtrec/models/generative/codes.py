"""Item codes, the word-level tokenizer and the prefix trie of the P5-style model.

Items are written as RANDOM code tokens (a seeded permutation: Hua, Xu, Ge and Zhang, "How to
Index Item IDs for Recommendation Foundation Models", SIGIR-AP 2023, show that consecutive ids
leak the interaction order); the tokenizer is built locally from the words the prompts use (no
hub download); the trie lets constrained decoding emit only valid, non-banned items. The model
itself is :mod:`mtrec.models.generative.p5`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
from transformers import PreTrainedTokenizerFast

__all__ = ["SPECIAL", "ItemCodebook", "PrefixTrie", "UnknownItemError", "build_tokenizer"]

SPECIAL = ["<pad>", "</s>", "<unk>"]  # ids 0, 1, 2: pad (also decoder start), end, unknown


class UnknownItemError(KeyError, ValueError):
    """An item id the codebook has no code for (a KeyError that prints its whole message)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ItemCodebook:
    """Random item → code-token mapping (a seeded permutation, so codes carry no item order).

    ``code_length`` 1: one token ``item_<r>`` per item; 2: two tokens ``a_<r // C> b_<r % C>``.
    Other naming schemes (sequential, collaborative, semantic codes of any length) are built by
    :mod:`mtrec.models.generative.ids` through :meth:`from_codes`.
    """

    def __init__(self, item_ids: Sequence[int], *, code_length: int = 1, seed: int = 0) -> None:
        item_ids = [int(i) for i in item_ids]
        if len(set(item_ids)) != len(item_ids) or not item_ids:
            raise ValueError("item_ids must be a non-empty list of distinct ids")
        rank = np.random.default_rng(seed).permutation(len(item_ids))
        width = int(np.ceil(np.sqrt(len(item_ids))))
        self.codes: dict[int, tuple[str, ...]] = {}
        for item, r in zip(item_ids, rank.tolist()):
            self.codes[item] = (
                (f"item_{r}",) if code_length == 1 else (f"a_{r // width}", f"b_{r % width}")
            )
        self.items = {code: item for item, code in self.codes.items()}

    @classmethod
    def from_codes(cls, codes: dict[int, tuple[str, ...]]) -> ItemCodebook:
        """A codebook from given code tuples (item id → tokens), all distinct, all one length."""
        if not codes:
            raise ValueError("codes is empty; pass at least one item → code tuple")
        lengths = {len(c) for c in codes.values()}
        if len(lengths) != 1 or 0 in lengths:
            raise ValueError(
                f"every code must have the same non-zero length, got {sorted(lengths)}"
            )
        if len(set(codes.values())) != len(codes):
            raise ValueError("two items share a code; codes must be unique (resolve collisions)")
        book = cls.__new__(cls)
        book.codes = {int(i): tuple(c) for i, c in codes.items()}
        book.items = {code: item for item, code in book.codes.items()}
        return book

    @property
    def code_length(self) -> int:
        return len(next(iter(self.codes.values())))

    def check_known(self, items: Sequence[int], name: str = "item ids") -> None:
        """Raise :class:`UnknownItemError` naming the ids that have no code."""
        unknown = sorted({int(i) for i in items} - self.codes.keys())
        if unknown:
            raise UnknownItemError(
                f"{name} {unknown[:5]} are not in the codebook ({len(self.codes)} items, ids "
                f"{min(self.codes)}..{max(self.codes)}); pass ids of catalogue items, or rebuild "
                "the codebook and model with these items"
            )

    def text(self, item: int) -> str:
        if item not in self.codes:
            self.check_known([item], "item id")
        return " ".join(self.codes[item])

    def tokens(self) -> list[str]:
        return sorted({t for code in self.codes.values() for t in code})


def build_tokenizer(words: Sequence[str]) -> PreTrainedTokenizerFast:
    """A lower-casing, whitespace-split word-level tokenizer over ``words`` (built locally)."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import WordLevel

    vocab = {w: i for i, w in enumerate(SPECIAL)}
    for word in words:
        vocab.setdefault(word.lower(), len(vocab))
    backend = Tokenizer(WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )


class PrefixTrie:
    """Prefix trie over item codes (token-id tuples) with per-request banned items."""

    def __init__(self, codes: dict[int, tuple[int, ...]]) -> None:
        self.codes = codes
        self.children: dict[tuple[int, ...], set[int]] = {}
        self.counts: Counter[tuple[int, ...]] = Counter()
        for code in codes.values():
            for depth in range(len(code)):
                self.children.setdefault(code[:depth], set()).add(code[depth])
                self.counts[code[: depth + 1]] += 1

    def allowed(self, prefix: tuple[int, ...], banned: Counter[tuple[int, ...]]) -> list[int]:
        """Next tokens after ``prefix`` that still lead to at least one non-banned item.

        Args:
            banned: prefix → number of banned items under it (see :meth:`banned_counts`).
        """
        return sorted(
            t
            for t in self.children.get(prefix, ())
            if self.counts[(*prefix, t)] > banned[(*prefix, t)]
        )

    def banned_counts(self, items: Sequence[int]) -> Counter[tuple[int, ...]]:
        banned: Counter[tuple[int, ...]] = Counter()
        for item in set(items):
            if item in self.codes:
                code = self.codes[item]
                for depth in range(1, len(code) + 1):
                    banned[code[:depth]] += 1
        return banned
