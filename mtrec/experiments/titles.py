"""Writing a review title with the text-to-text model, and measuring whether it is faithful.

Women's Clothing reviews carry a title written by the shopper. :class:`TitleWriter` (the P5
machinery: a tiny T5 over a word-level vocabulary built here) learns to write it from a short
input: the item's department and class and the rating, optionally followed by the first words of
the review itself (``with_review=True``). The data has no user ids, so a user's earlier titles
cannot be given.

Quality is measured against the real titles by :mod:`mtrec.eval.titles` (BLEU, ROUGE-L,
distinct-n, and faithfulness computed by code, not read by eye: a sentiment judge trained on the
training titles, whose agreement on the real test titles is the human ceiling, and the consistency
of the clothing class a title names), beside a retrieval baseline (:func:`retrieve_titles`: the
most frequent training title among the nearest training inputs by MiniLM embedding) and a template
baseline (:func:`template_titles`).
"""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn

from mtrec.data import TensorBatcher, load_clothing, random_split
from mtrec.eval.titles import (
    SentimentJudge,
    class_consistency,
    class_mentions,
    distinct_n,
    normalise,
    sentiment_agreement,
    text_metrics,
)
from mtrec.models.generative.codes import build_tokenizer
from mtrec.train import fit
from mtrec.utils import set_seed

log = logging.getLogger(__name__)

__all__ = [
    "DECODINGS",
    "TitleData",
    "TitleWriter",
    "evaluate_titles",
    "load_title_data",
    "pick_decoding",
    "retrieve_titles",
    "run_titles",
    "template_titles",
    "title_sources",
    "train_writer",
]  # fmt: skip

REVIEW_WORDS = 24  # words of the review text appended to the input when with_review=True
TITLE_LEN = 12  # decoder tokens (titles are short: 3-4 words on average)
TITLE_EPOCHS = 60  # cap on the writer's epochs; early stopping on validation loss ends it first
TITLE_PATIENCE = 2  # epochs without a lower validation loss before stopping
MIN_TOKENS = 2  # a title has at least one word before its end token: never empty
DISTINCT_FLOOR = 0.3  # the decoding picked on validation must write this share of distinct titles
# decodings tried on validation: greedy with a repetition penalty, or nucleus sampling (top-p)
DECODINGS: dict[str, dict] = {
    "greedy": {"repetition_penalty": 1.0},
    "greedy-rp1.5": {"repetition_penalty": 1.5},
    "top-p0.5": {"top_p": 0.5},
    "top-p0.8": {"top_p": 0.8},
    "top-p0.95": {"top_p": 0.95},
}
MIN_COUNT = 2  # a training word enters the vocabulary when seen at least this often


@dataclass
class TitleData:
    """Reviews with a title and a class, split by review; ``source`` is the model's input."""

    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame


def title_sources(frame: pd.DataFrame, with_review: bool = False) -> list[str]:
    """The writer's input per review: "department <d> class <c> rating <r>" (+ "review <words>")."""
    base = [f"department {normalise(d)} class {normalise(c)} rating {r}"
            for d, c, r in zip(frame.department, frame.class_name, frame.rating)]  # fmt: skip
    if not with_review:
        return base
    return [f"{b} review {' '.join(normalise(t).split()[:REVIEW_WORDS])}"
            for b, t in zip(base, frame.text)]  # fmt: skip


def load_title_data(seed: int = 0) -> TitleData:
    """Clothing reviews with a non-empty title and a class, split 80/10/10 by review."""
    frame = load_clothing()
    frame = frame[
        (frame.title.str.strip() != "") & frame.class_name.notna() & frame.department.notna()
    ]
    frame = frame.assign(target=[normalise(t) for t in frame.title]).reset_index(drop=True)
    frame = frame[frame.target != ""].reset_index(drop=True)
    split = random_split(frame, seed=seed)
    return TitleData(split.train, split.valid, split.test)


class TitleWriter(nn.Module):
    """A tiny T5 that writes a title from the input text (the P5 machinery, without item codes)."""

    def __init__(self, train_sources: Sequence[str], train_titles: Sequence[str], *,
                 d_model: int = 64, seed: int = 0) -> None:  # fmt: skip
        from transformers import T5Config, T5ForConditionalGeneration

        super().__init__()
        counts = Counter(w for text in [*train_sources, *train_titles] for w in text.split())
        self.tokenizer = build_tokenizer(sorted(w for w, c in counts.items() if c >= MIN_COUNT))
        self.source_len = 8 + REVIEW_WORDS + 2
        set_seed(seed)
        config = T5Config(
            vocab_size=len(self.tokenizer), d_model=d_model, d_kv=d_model // 4, d_ff=2 * d_model,
            num_layers=2, num_decoder_layers=2, num_heads=4, dropout_rate=0.1,
            feed_forward_proj="relu", tie_word_embeddings=True, pad_token_id=0, eos_token_id=1,
            decoder_start_token_id=0,
        )  # fmt: skip
        self.t5 = T5ForConditionalGeneration(config)

    def _encode(self, texts: Sequence[str], length: int) -> dict[str, torch.Tensor]:
        return dict(self.tokenizer([t + " </s>" for t in texts], padding="max_length",
                                   truncation=True, max_length=length, return_tensors="pt"))  # fmt: skip

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Token cross-entropy of the title; padding columns are trimmed first (inputs of a few
        words would otherwise be padded to the longest possible input)."""
        src = int(batch["attention_mask"].sum(dim=1).max())
        tgt = int((batch["labels"] != -100).sum(dim=1).max())
        return self.t5(
            input_ids=batch["input_ids"][:, :src].contiguous(),
            attention_mask=batch["attention_mask"][:, :src].contiguous(),
            labels=batch["labels"][:, :tgt].contiguous(),
        ).loss

    def _batch(self, sources: Sequence[str], titles: Sequence[str]) -> dict[str, torch.Tensor]:
        enc = self._encode(sources, self.source_len)
        labels = self._encode(titles, TITLE_LEN)
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
                "labels": labels["input_ids"].masked_fill(labels["attention_mask"] == 0, -100)}  # fmt: skip

    def fit(self, sources: Sequence[str], titles: Sequence[str], *, epochs: int = TITLE_EPOCHS,
            valid: tuple[Sequence[str], Sequence[str]] | None = None, seed: int = 0):  # fmt: skip
        """Cross-entropy on the title tokens, Adam lr 5e-3, batches of 128; with ``valid``
        (sources, titles), early stopping on the validation loss (patience
        :data:`TITLE_PATIENCE`, at most ``epochs``). Sets ``self.history``."""
        batches = TensorBatcher(self._batch(sources, titles), 128, shuffle=True, seed=seed)
        valid_fn = None
        if valid is not None:
            held_out = TensorBatcher(self._batch(*valid), 512)

            @torch.no_grad()
            def valid_fn(model: TitleWriter) -> float:
                model.eval()
                losses = [float(model.loss(b)) * len(b["labels"]) for b in held_out]
                model.train()
                return sum(losses) / len(valid[0])

        self.history = fit(self, batches, valid_fn=valid_fn, mode="min", epochs=epochs, lr=5e-3,
                           patience=TITLE_PATIENCE, progress=False, seed=seed)  # fmt: skip
        return self

    @torch.no_grad()
    def write(self, sources: Sequence[str], batch_size: int = 256, *,
              repetition_penalty: float = 1.0, top_p: float | None = None,
              seed: int = 0) -> list[str]:  # fmt: skip
        """At least one word per title (:data:`MIN_TOKENS`; ``<unk>`` and ``<pad>`` are never
        written, so no title decodes to nothing). Greedy decoding (each distinct input
        decoded once, ``repetition_penalty`` > 1 lowers repeated tokens) or, with ``top_p``,
        nucleus sampling seeded by ``seed`` (each row sampled on its own)."""
        if top_p is not None and not 0.0 < top_p <= 1.0:
            raise ValueError(
                f"top_p must be in (0, 1], got {top_p!r}; e.g. 0.8, or None for greedy"
            )
        if repetition_penalty < 1.0:
            raise ValueError(
                f"repetition_penalty must be >= 1 (1 = none), got {repetition_penalty!r}"
            )
        self.eval()
        sampled = top_p is not None
        unique = list(sources) if sampled else list(dict.fromkeys(sources))
        options = dict(do_sample=True, top_p=top_p, top_k=0) if sampled else dict(do_sample=False)
        unwritable = [self.tokenizer.unk_token_id, self.tokenizer.pad_token_id]
        set_seed(seed)
        written: list[str] = []
        for s in range(0, len(unique), batch_size):
            enc = self._encode(unique[s : s + batch_size], self.source_len)
            ids = self.t5.generate(**enc, max_new_tokens=TITLE_LEN, min_new_tokens=MIN_TOKENS,
                                   num_beams=1, repetition_penalty=repetition_penalty,
                                   suppress_tokens=unwritable, **options)  # fmt: skip
            written += [
                " ".join(r.split())
                for r in self.tokenizer.batch_decode(ids, skip_special_tokens=True)
            ]
        if sampled:
            return written
        out = dict(zip(unique, written))
        return [out[s] for s in sources]


def pick_decoding(
    write: Callable[..., list[str]], references: Sequence[str]
) -> tuple[str, pd.DataFrame]:
    """The decoding of :data:`DECODINGS` picked on validation: the best ROUGE-L among those that
    write at least :data:`DISTINCT_FLOOR` distinct titles (the most distinct one if none does).

    Args:
        write: decoding options (one entry of :data:`DECODINGS`) → the validation titles.
        references: the validation titles as shoppers wrote them (normalised).

    Returns:
        (its name, the validation table: rouge_l and distinct_titles per decoding).
    """
    rows = {}
    for name, options in DECODINGS.items():
        written = write(**options)
        rows[name] = {"rouge_l": text_metrics(written, references)["rouge_l"],
                      "distinct_titles": len(set(written)) / len(written)}  # fmt: skip
    table = pd.DataFrame(rows).T
    ok = table[table.distinct_titles >= DISTINCT_FLOOR]
    best = ok.rouge_l.idxmax() if len(ok) else table.distinct_titles.idxmax()
    return str(best), table


def retrieve_titles(train: pd.DataFrame, test: pd.DataFrame, with_review: bool) -> list[str]:
    """For each test input, the most frequent training title among the nearest training inputs
    (cosine of MiniLM embeddings of the input text, 32 tokens, cached; ties kept together)."""
    from mtrec.extractors.text import TextEncoder

    encoder = TextEncoder(max_length=32)
    train_src, test_src = title_sources(train, with_review), title_sources(test, with_review)
    unique = list(dict.fromkeys([*train_src, *test_src]))
    with warnings.catch_warnings():  # reading only each text's first 32 tokens is the design
        warnings.filterwarnings("ignore", ".*longer than max_length", UserWarning)
        vectors = encoder.encode(unique, progress=False).float()
    row = {text: i for i, text in enumerate(unique)}
    a = vectors[[row[t] for t in test_src]]
    b = vectors[[row[t] for t in train_src]]
    titles = train.target.to_numpy()
    out = []
    for start in range(0, len(a), 512):
        sims = a[start : start + 512] @ b.T  # (n, N_train)
        best = sims.max(dim=1, keepdim=True).values
        for near in (sims >= best - 1e-6).numpy():
            out.append(Counter(titles[near]).most_common(1)[0][0])
    return out


def template_titles(test: pd.DataFrame) -> list[str]:
    """ "love this <class>" (rating 4-5), "nice <class>" (3), "disappointed" (1-2)."""
    out = []
    for c, r in zip(test.class_name, test.rating):
        thing = normalise(c)
        out.append(f"love this {thing}" if r > 3 else f"nice {thing}" if r == 3 else "disappointed")
    return out


def evaluate_titles(written: Sequence[str], test: pd.DataFrame, judge: SentimentJudge) -> dict:
    """Text metrics and faithfulness of ``written`` titles for the ``test`` reviews."""
    return {
        **text_metrics(written, test.target.tolist()),
        "sentiment_agreement": sentiment_agreement(judge, written, test.rating),
        "class_consistency": class_consistency(written, test.class_name.tolist()),
        "class_mention": class_mentions(written, test.class_name.tolist()),
        "distinct_titles": float(len(set(written)) / len(written)),
        "distinct_1": distinct_n(written, 1),
        "distinct_2": distinct_n(written, 2),
    }


def train_writer(
    part: TitleData, seed: int, *, review: bool = False, epochs: int = TITLE_EPOCHS
) -> tuple[TitleWriter, str, pd.DataFrame]:
    """The writer of notebook 08: fitted on ``part.train`` with early stopping on ``part.valid``'s
    loss, and its decoding picked on ``part.valid`` (:func:`pick_decoding`).

    Returns:
        (the writer, the name of its decoding in :data:`DECODINGS`, the validation table).
    """
    source = title_sources(part.train, review)
    writer = TitleWriter(source, part.train.target.tolist(), seed=seed)
    valid_src = title_sources(part.valid, review)
    writer.fit(source, part.train.target.tolist(), epochs=epochs, seed=seed,
               valid=(valid_src, part.valid.target.tolist()))  # fmt: skip
    decoding, table = pick_decoding(lambda **o: writer.write(valid_src, seed=seed, **o),
                                    part.valid.target.tolist())  # fmt: skip
    log.info("title writer seed %d: decoding %s, %d epochs", seed, decoding,
             len(writer.history.epochs))  # fmt: skip
    return writer, decoding, table


def run_titles(
    data: TitleData | None = None, seeds: Sequence[int] = (0, 1, 2), *,
    epochs: int = TITLE_EPOCHS, samples: dict | None = None,
    variants: Sequence[tuple[str, bool]] = (("", False),),
) -> pd.DataFrame:  # fmt: skip
    """Per seed (the split and the model's initialisation): every writer's metrics.

    Writers: ``title-p5`` (TitleWriter, early-stopped on validation loss, its decoding picked
    by :func:`pick_decoding`), ``title-p5-greedy`` (the same model, greedy), ``title-retrieval``,
    ``title-template``, and ``title-human`` (the real titles: the faithfulness ceiling);
    ``variants`` may add ``("-review", True)``: the same writers given the review's first words
    too. ``samples``, when given, receives the seed-0 test frame with every writer's title as a
    column, and the decoding table under "decodings".
    """
    rows = []
    for seed in seeds:
        part = data if (data is not None and seed == seeds[0]) else load_title_data(seed)
        train, test = part.train, part.test
        judge = SentimentJudge(train.target.tolist(), train.rating)
        written = {"title-template": template_titles(test), "title-human": test.target.tolist()}
        ended = {}
        for suffix, review in variants:
            writer, decoding, table = train_writer(part, seed, review=review, epochs=epochs)
            test_src = title_sources(test, review)
            written[f"title-p5{suffix}"] = writer.write(test_src, seed=seed, **DECODINGS[decoding])
            written[f"title-p5{suffix}-greedy"] = writer.write(test_src)
            written[f"title-retrieval{suffix}"] = retrieve_titles(train, test, review)
            ended[f"title-p5{suffix}"] = {"epochs": float(len(writer.history.epochs)),
                                          "best_epoch": float(writer.history.best_epoch),
                                          "at_cap": float(len(writer.history.epochs) >= epochs)}  # fmt: skip
            if samples is not None and seed == seeds[0]:
                samples[f"decodings{suffix}"] = table.assign(picked=table.index == decoding)
        for name, titles in written.items():
            rows.append({"model": name, "seed": seed, **evaluate_titles(titles, test, judge),
                         **ended.get(name, {})})  # fmt: skip
        if samples is not None and seed == seeds[0]:
            samples["frame"] = test.assign(**{k: v for k, v in written.items()})
        log.info("titles seed %d done", seed)
    return pd.DataFrame(rows)
