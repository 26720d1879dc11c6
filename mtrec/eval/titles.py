"""Measuring written review titles against the shoppers' own (notebooks 08 and 15).

* :func:`text_metrics`: corpus BLEU (``sacrebleu``) and mean ROUGE-L F1 (``rouge-score``).
* :func:`distinct_n`: the share of distinct n-grams (Li et al., 2016).
* :class:`SentimentJudge` and :func:`sentiment_agreement`: a bag-of-words logistic regression
  trained on the *training* titles judges whether a title is positive; a written title agrees when
  the verdict matches the true rating > 3.
* :func:`class_consistency` and :func:`class_mentions`: titles naming no clothing class other than
  the item's own (keywords in :data:`CLASS_KEYWORDS`: "dress" in a title about jeans contradicts
  it), and titles naming the item's own class.
* :func:`normalise`: the text form every metric reads ("Love it!" → "love it !").
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from mtrec.checks import check_nonempty

# keyword → classes it may describe (a title naming a keyword outside the item's set contradicts it)
CLASS_KEYWORDS: dict[str, set[str]] = {
    "dress": {"Dresses"}, "skirt": {"Skirts"}, "jean": {"Jeans"}, "denim": {"Jeans", "Jackets"},
    "pant": {"Pants", "Casual bottoms", "Lounge", "Sleep"}, "trouser": {"Pants"},
    "sweater": {"Sweaters", "Fine gauge"}, "cardigan": {"Sweaters", "Fine gauge"},
    "jacket": {"Jackets", "Outerwear"}, "coat": {"Outerwear", "Jackets"},
    "blouse": {"Blouses"}, "tee": {"Knits"}, "swimsuit": {"Swim"}, "bikini": {"Swim"},
    "bra": {"Intimates"}, "legging": {"Legwear", "Pants", "Lounge"}, "robe": {"Sleep", "Lounge"},
    "pajama": {"Sleep", "Lounge"}, "romper": {"Dresses", "Pants"}, "jumpsuit": {"Pants", "Dresses"},
    "vest": {"Outerwear", "Jackets", "Knits"}, "tunic": {"Knits", "Blouses", "Dresses"},
}  # fmt: skip


def normalise(text: str) -> str:
    """Lower-case words and punctuation marks separated by spaces ("Love it!" → "love it !")."""
    return " ".join(re.findall(r"[a-z0-9']+|[!?.,]", str(text).lower()))


def _keywords(title: str) -> set[str]:
    found = set()
    for word in title.split():
        for stem in (
            word,
            word[:-1] if word.endswith("s") else "",
            word[:-2] if word.endswith("es") else "",
        ):
            if stem in CLASS_KEYWORDS:
                found.add(stem)
    return found


def class_consistency(titles: Sequence[str], classes: Sequence[str]) -> float:
    """Share of titles naming no clothing class other than the item's own."""
    check_nonempty(titles, "titles")
    ok = [all(c in CLASS_KEYWORDS[k] for k in _keywords(t)) for t, c in zip(titles, classes)]
    return float(np.mean(ok))


def class_mentions(titles: Sequence[str], classes: Sequence[str]) -> float:
    """Share of titles naming the item's own class (by a keyword of :data:`CLASS_KEYWORDS`)."""
    check_nonempty(titles, "titles")
    return float(np.mean([any(c in CLASS_KEYWORDS[k] for k in _keywords(t))
                          for t, c in zip(titles, classes)]))  # fmt: skip


class SentimentJudge:
    """Bag-of-words logistic regression: P(rating > 3 | title), fitted on training titles."""

    def __init__(self, titles: Sequence[str], ratings: Sequence[int]) -> None:
        from sklearn.feature_extraction.text import CountVectorizer
        from sklearn.linear_model import LogisticRegression

        self.vectorizer = CountVectorizer(binary=True, token_pattern=r"[a-z0-9']+|[!?]")
        x = self.vectorizer.fit_transform(titles)
        self.model = LogisticRegression(C=1.0, max_iter=1000).fit(x, np.asarray(ratings) > 3)

    def positive(self, titles: Sequence[str]) -> np.ndarray:
        return self.model.predict(self.vectorizer.transform(titles)).astype(bool)


def sentiment_agreement(
    judge: SentimentJudge, titles: Sequence[str], ratings: Sequence[int]
) -> float:
    """Share of titles whose judged sentiment (positive or not) matches rating > 3."""
    check_nonempty(titles, "titles")
    return float(np.mean(judge.positive(titles) == (np.asarray(ratings) > 3)))


def text_metrics(written: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Corpus BLEU (sacrebleu, 0..100) and mean ROUGE-L F1 (rouge-score) of written titles."""
    import sacrebleu
    from rouge_score import rouge_scorer

    check_nonempty(written, "written titles")
    bleu = sacrebleu.corpus_bleu(
        list(written), [list(references)], tokenize="none", force=True
    ).score  # force: the texts are normalised on purpose (no detokenisation warning)
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    rouge = np.mean([scorer.score(r, w)["rougeL"].fmeasure for w, r in zip(written, references)])
    return {"bleu": float(bleu), "rouge_l": float(rouge)}


def distinct_n(titles: Sequence[str], n: int) -> float:
    """distinct-n (Li et al., 2016): distinct n-grams over all n-grams of the titles, pooled."""
    check_nonempty(titles, "titles")
    grams = [tuple(w[i : i + n]) for w in map(str.split, titles) for i in range(len(w) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0
