"""SmolLM2 with LoRA writes Clothing review titles, scored like notebook 08's title writer.

Protocol (notebook 15, part 5): notebook 08's title data (:func:`mtrec.experiments.titles.
load_title_data`: reviews with a title and a class, split 80/10/10 by review, one split per
seed). The input is what notebook 08's writer reads: department, class and rating, here as a
sentence. SmolLM2 gets LoRA (rank :data:`RANK`) trained on :data:`TRAIN_ROWS` training titles
(the completion loss of :class:`mtrec.models.llm.completion.PromptCompletion`, early stopping on
the loss of :data:`VALID_ROWS` validation titles) and writes greedily with a minimum length and
the repetition penalty of :data:`PENALTIES` with the best validation ROUGE-L. Beside it, on the same first :data:`TEST_ROWS` test reviews: notebook 08's
from-scratch writer (``title-p5``, trained on every training title), retrieval, the template
and the human titles, all measured by :func:`mtrec.experiments.titles.evaluate_titles` (BLEU,
ROUGE-L, sentiment agreement with a judge trained on training titles, class consistency and
mentions, the share of distinct titles). Rows: dataset ``clothing-300``, task
``review_title``.
"""

from __future__ import annotations

import pandas as pd

from mtrec.data import TensorBatcher
from mtrec.eval.titles import SentimentJudge, normalise, text_metrics
from mtrec.experiments.titles import (
    TitleWriter,
    evaluate_titles,
    load_title_data,
    retrieve_titles,
    template_titles,
    title_sources,
)
from mtrec.models.llm import add_lora, load_language_model
from mtrec.models.llm.completion import PromptCompletion, encode_pairs, write
from mtrec.train import fit
from mtrec.utils import set_seed

RANK = 8
TRAIN_ROWS, VALID_ROWS, TEST_ROWS = 1024, 128, 300
LR, BATCH, EPOCHS = 5e-4, 16, 3
PENALTIES = (1.0, 1.3)  # repetition penalties tried; validation ROUGE-L picks one
WRITER_EPOCHS = 3  # notebook 08's writer, as run_titles trains it
DATASET = "clothing-300"


def title_prompts(rows: pd.DataFrame) -> list[str]:
    """ "A shopper rated a Dresses item (department Dresses) 2 out of 5. Review title:" """
    return [f"A shopper rated a {c} item (department {d}) {r} out of 5. Review title:"
            for c, d, r in zip(rows.class_name, rows.department, rows.rating)]  # fmt: skip


def tune_title_writer(train: pd.DataFrame, valid: pd.DataFrame, seed: int):
    """SmolLM2 + LoRA fitted to write ``train``'s titles; returns (model, tokenizer)."""
    set_seed(seed)
    model, tokenizer = load_language_model()
    model = add_lora(model, rank=RANK)
    rows = train.sample(n=min(TRAIN_ROWS, len(train)), random_state=seed)
    pairs = encode_pairs(tokenizer, title_prompts(rows), [" " + t.strip() for t in rows.title])
    held = valid.head(VALID_ROWS)
    check = encode_pairs(tokenizer, title_prompts(held), [" " + t.strip() for t in held.title])
    lm = PromptCompletion(model)
    fit(lm, TensorBatcher(pairs, BATCH, shuffle=True, seed=seed), epochs=EPOCHS, lr=LR,
        valid_fn=lambda m: -float(m.loss(check)), patience=1, seed=seed, progress=False)  # fmt: skip
    return model, tokenizer


def pick_penalty(model, tokenizer, valid: pd.DataFrame) -> float:
    """The repetition penalty of :data:`PENALTIES` with the best validation ROUGE-L."""
    held = valid.head(VALID_ROWS)
    scores = {}
    for penalty in PENALTIES:
        titles = write(model, tokenizer, title_prompts(held), repetition_penalty=penalty)
        scores[penalty] = text_metrics([normalise(t) for t in titles], held.target.tolist())
    return max(PENALTIES, key=lambda p: scores[p]["rouge_l"])


def title_rows(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One seed's metric rows (model, metric, value) and the written titles of the test rows."""
    data = load_title_data(seed)
    train, test = data.train, data.test.head(TEST_ROWS)
    judge = SentimentJudge(train.target.tolist(), train.rating)
    model, tokenizer = tune_title_writer(train, data.valid, seed)
    penalty = pick_penalty(model, tokenizer, data.valid)
    lm_titles = write(model, tokenizer, title_prompts(test), repetition_penalty=penalty)
    written = {"title-smollm2-lora": [normalise(t) for t in lm_titles]}
    writer = TitleWriter(title_sources(train), train.target.tolist(), seed=seed)
    writer.fit(title_sources(train), train.target.tolist(), epochs=WRITER_EPOCHS, seed=seed)
    written["title-p5"] = writer.write(title_sources(test))
    written["title-retrieval"] = retrieve_titles(train, test, False)
    written["title-template"] = template_titles(test)
    written["title-human"] = test.target.tolist()
    rows = [(name, metric, value) for name, titles in written.items()
            for metric, value in evaluate_titles(titles, test, judge).items()]  # fmt: skip
    rows.append(("title-smollm2-lora", "repetition_penalty", penalty))
    frame = pd.DataFrame(rows, columns=["model", "metric", "value"])
    samples = test[["class_name", "rating"]].assign(**written).reset_index(drop=True)
    return frame.assign(dataset=DATASET, task="review_title"), samples
