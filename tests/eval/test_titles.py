"""Title metrics computed by code: normalising, class consistency, sentiment agreement, BLEU and
ROUGE-L, distinct-n."""

import pytest

from mtrec.eval import titles


def test_title_metrics_by_code():
    assert titles.normalise("Love it!!  So CUTE") == "love it ! ! so cute"
    assert (
        titles.class_consistency(["love this dress", "great jeans"], ["Dresses", "Dresses"]) == 0.5
    )
    assert titles.class_mentions(["love these skirts", "nice"], ["Skirts", "Skirts"]) == 0.5
    judge = titles.SentimentJudge(
        ["love it", "love this", "awful", "returned it"] * 5, [5, 5, 1, 2] * 5
    )
    assert titles.sentiment_agreement(judge, ["love", "awful"], [5, 1]) == 1.0
    assert titles.sentiment_agreement(judge, ["love", "awful"], [1, 5]) == 0.0
    scores = titles.text_metrics(["i love this dress so much"], ["i love this dress so much"])
    assert scores["rouge_l"] == pytest.approx(1.0) and scores["bleu"] > 0
    with pytest.raises(ValueError, match="empty"):
        titles.class_consistency([], [])


def test_distinct_n_pools_the_ngrams_of_all_titles():
    assert titles.distinct_n(["love it", "love it"], 1) == pytest.approx(2 / 4)
    assert titles.distinct_n(["love it", "love this dress"], 2) == pytest.approx(3 / 3)
    assert titles.distinct_n(["nice"], 2) == 0.0  # no bigram at all
    with pytest.raises(ValueError, match="empty"):
        titles.distinct_n([], 1)
