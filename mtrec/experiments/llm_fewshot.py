"""SmolLM2 fine-tuned with LoRA to answer "Would they recommend it?", against the feature models.

Protocol (notebook 15, parts 2 and 4). Data: the Clothing task of notebooks 05 and 06
(:func:`mtrec.data.tasks.clothing_departments`, random 8:1:1 split, seed 0); task
``recommended``. Every model is selected on the same :data:`VALID_ROWS` validation rows and
tested on the same :data:`TEST_ROWS` test rows (both drawn once, seed 0). A seed draws the
training rows (the first n of a seeded permutation of the training split, so the sets are
nested), the initialisation and the batch order.

* **LM.** SmolLM2-135M-Instruct with LoRA (rank :data:`RANK` on q_proj and v_proj), the review
  as a prompt (:func:`mtrec.data.tasks.prompts.clothing_review_prompts`), scored by
  P(" Yes") against P(" No") (:class:`mtrec.models.llm.YesNoScorer`); AdamW-free Adam lr
  :data:`LM_LR`, batches of :data:`LM_BATCH`, an epoch cap that gives every size about
  :data:`LM_STEPS` steps, early stopping on validation AUC. n = 0 is the untuned model.
* **Feature models** (the same inputs as numbers: item, class, age, title): shared-bottom and
  MMoE on the three Clothing labels (notebook 06's sizes), and a shared-bottom whose title is
  the frozen MiniLM sentence embedding (384-d) instead of the 16-d TF-IDF SVD.
* **Distillation** (notebook 09's :class:`~mtrec.train.distill.Distiller`): the LoRA LM tuned
  on the largest n teaches the course's student (:class:`~mtrec.models.student.StudentMLP` on
  the feature inputs) on its n labelled rows plus :data:`TRANSFER_ROWS` unlabelled training
  rows; the same student trained on the labels alone is the control.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from mtrec.data import TensorBatcher
from mtrec.data.loaders import clothing_multitask
from mtrec.data.schema import DenseFeature
from mtrec.data.splits import random_split
from mtrec.data.tasks import ClickTask, clothing_departments
from mtrec.data.tasks.prompts import clothing_review_prompts
from mtrec.eval.metrics import auc
from mtrec.models.llm import (
    YesNoScorer,
    add_lora,
    encode_prompts,
    load_language_model,
    yes_probability,
)
from mtrec.models.multitask.mmoe import MMoE
from mtrec.models.multitask.shared_bottom import SharedBottom, SharedBottomConfig
from mtrec.models.of_record import multitask_mmoe_config
from mtrec.models.student import StudentConfig, StudentMLP
from mtrec.train import fit
from mtrec.train.distill import DistillConfig, Distiller
from mtrec.utils import set_seed

SIZES = (64, 256, 1024)  # labelled training rows of the few-shot curve
VALID_ROWS, TEST_ROWS = 160, 500  # the fixed selection and test rows
TASK = "recommended"
RANK = 8  # LoRA rank
LM_LR = 5e-4
LM_BATCH = 16
LM_STEPS = 96  # about this many steps per size (epochs = steps / batches per epoch, 2..10)
LM_PATIENCE = 2
FEATURE_LR, FEATURE_BATCH, FEATURE_EPOCHS, FEATURE_PATIENCE = 3e-3, 32, 60, 8
TRANSFER_ROWS = 1024  # unlabelled training rows the teacher labels for the student
DISTILL = DistillConfig(alpha=0.5, temperature=2.0)  # half labels, half the teacher's log-odds
MINILM_DIM = 384


@dataclass(frozen=True)
class ClothingText:
    """The Clothing task with each row also written as a prompt, and the fixed eval rows."""

    task: ClickTask  # features for the feature models (recommended, like, helpful)
    prompts: dict[str, list[str]]  # split → one prompt per row, in the task's row order
    titles: dict[str, list[str]]  # split → review titles (the MiniLM model's text)
    valid_rows: np.ndarray  # (VALID_ROWS,) indices into the validation split
    test_rows: np.ndarray  # (TEST_ROWS,) indices into the test split

    def labels(self, split: str, rows: np.ndarray) -> np.ndarray:
        """(n,) 0/1 ``recommended`` labels of ``rows`` of ``split``."""
        column = self.task.task_names.index(TASK)
        return getattr(self.task, split)["labels"][rows, column].numpy()


@functools.cache
def clothing_text() -> ClothingText:
    """:class:`ClothingText` once per process (same split as :func:`clothing_departments`)."""
    task = clothing_departments()
    split = random_split(clothing_multitask(), seed=0)  # the task's own split, row for row
    parts = {"train": split.train, "valid": split.valid, "test": split.test}
    rng = np.random.default_rng(0)
    return ClothingText(
        task=task,
        prompts={name: clothing_review_prompts(part) for name, part in parts.items()},
        titles={name: part.title.tolist() for name, part in parts.items()},
        valid_rows=np.sort(rng.choice(len(split.valid), VALID_ROWS, replace=False)),
        test_rows=np.sort(rng.choice(len(split.test), TEST_ROWS, replace=False)),
    )


def training_rows(size: int | None, seed: int) -> np.ndarray:
    """The first ``size`` rows (all when None) of the seed's permutation of the training split."""
    n = len(clothing_text().task.train["labels"])
    order = np.random.default_rng(1000 + seed).permutation(n)
    return order if size is None else order[:size]


# -- the language model ---------------------------------------------------------------------
def lm_inputs(split: str, rows: np.ndarray, tokenizer) -> dict[str, torch.Tensor]:
    """Prompts of ``rows`` of ``split`` as left-padded ids, with their (n, 1) labels."""
    data = clothing_text()
    inputs = encode_prompts(tokenizer, [data.prompts[split][i] for i in rows])
    return {
        **inputs,
        "labels": torch.tensor(data.labels(split, rows), dtype=torch.float32)[:, None],
    }


@functools.cache
def lm_tokenizer():
    """SmolLM2's tokenizer, loaded once per process."""
    return load_language_model()[1]


def lm_scorer(*, lora: bool, seed: int = 0) -> tuple[YesNoScorer, object]:
    """A fresh SmolLM2 (LoRA-wrapped when ``lora``) as a yes/no scorer, and its tokenizer."""
    set_seed(seed)
    model, tokenizer = load_language_model()
    if lora:
        model = add_lora(model, rank=RANK)
    return YesNoScorer(model, tokenizer, task_names=(TASK,)), tokenizer


def lm_auc(scorer: YesNoScorer, inputs: dict[str, torch.Tensor]) -> float:
    """AUC of P(Yes) on prompts from :func:`lm_inputs`."""
    return auc(inputs["labels"][:, 0].numpy(), yes_probability(scorer, inputs).numpy())


def lm_epochs(size: int) -> int:
    """The epoch cap of a training set of ``size`` rows: about :data:`LM_STEPS` steps, 2..10."""
    return int(np.clip(round(LM_STEPS * LM_BATCH / size), 2, 10))


def tune_lm(size: int, seed: int) -> tuple[YesNoScorer, dict]:
    """LoRA-tune SmolLM2 on ``size`` training rows; return it and a record of the run."""
    scorer, tokenizer = lm_scorer(lora=True, seed=seed)
    data = clothing_text()
    train = lm_inputs("train", training_rows(size, seed), tokenizer)
    valid = lm_inputs("valid", data.valid_rows, tokenizer)
    start = time.perf_counter()
    history = fit(scorer, TensorBatcher(train, LM_BATCH, shuffle=True, seed=seed),
                  valid_fn=lambda m: lm_auc(m, valid), epochs=lm_epochs(size), lr=LM_LR,
                  patience=LM_PATIENCE, seed=seed, progress=False)  # fmt: skip
    seconds = time.perf_counter() - start
    steps = len(history.epochs) * -(-size // LM_BATCH)
    return scorer, {"epochs_run": len(history.epochs), "epoch_cap": lm_epochs(size),
                    "best_epoch": history.best_epoch, "seconds": seconds, "steps": steps}  # fmt: skip


# -- the feature models ---------------------------------------------------------------------
@functools.cache
def minilm_titles() -> dict[str, torch.Tensor]:
    """Split → (N, 384) frozen MiniLM embeddings of the review titles (once per process; the
    vectors come from the on-disk cache after the first run)."""
    from mtrec.extractors.text import TextEncoder

    encoder = TextEncoder()
    data = clothing_text()
    return {name: encoder.encode([t or "(no title)" for t in titles], progress=False)
            for name, titles in data.titles.items()}  # fmt: skip


def _part(split: str, rows: np.ndarray, *, minilm: bool) -> dict[str, torch.Tensor]:
    part = {k: v[rows] for k, v in getattr(clothing_text().task, split).items()}
    if minilm:
        part["title"] = (
            4.0 * minilm_titles()[split][rows]
        )  # unit vectors, scaled like the SVD title
    return part


def feature_builders(*, minilm: bool = False) -> dict[str, callable]:
    """Model name → constructor of the feature models (notebook 06's sizes)."""
    features = clothing_text().task.features
    if minilm:
        features = (*features[:-1], DenseFeature("title", MINILM_DIM))
        return {"shared_bottom+minilm": lambda: SharedBottom(SharedBottomConfig(
            features, num_tasks=3, bottom_hidden=(64, 32), tower_hidden=(16,)))}  # fmt: skip
    return {
        "shared_bottom": lambda: SharedBottom(SharedBottomConfig(
            features, num_tasks=3, bottom_hidden=(64, 32), tower_hidden=(16,))),
        "mmoe": lambda: MMoE(multitask_mmoe_config(features, 3)),
    }  # fmt: skip


def click_auc(model: nn.Module, part: dict[str, torch.Tensor]) -> float:
    """AUC of the ``recommended`` logit of a multi-task model on ``part``."""
    column = clothing_text().task.task_names.index(TASK)
    model.eval()
    with torch.no_grad():
        logits = model(part)
    logits = logits[0] if isinstance(logits, tuple) else logits
    return auc(part["labels"][:, column].numpy(), logits[:, column].float().numpy())


def train_feature_model(make, size: int | None, seed: int, *, minilm: bool = False) -> float:
    """Test AUC of ``make()`` trained on ``size`` rows (all when None), selected on validation."""
    data = clothing_text()
    train = _part("train", training_rows(size, seed), minilm=minilm)
    valid = _part("valid", data.valid_rows, minilm=minilm)
    set_seed(seed)
    model = fit_selected(make(), train, lambda m: click_auc(m, valid), seed=seed,
                         batch_size=FEATURE_BATCH if size is not None else 1024)  # fmt: skip
    return click_auc(model, _part("test", data.test_rows, minilm=minilm))


def fit_selected(model: nn.Module, train: dict[str, torch.Tensor], score, *, seed: int,
                 batch_size: int = FEATURE_BATCH) -> nn.Module:  # fmt: skip
    """Fit a feature model, student or distiller with the feature models' settings, keeping the
    epoch with the best validation ``score(model)``."""
    fit(model, TensorBatcher(train, batch_size, shuffle=True, seed=seed), valid_fn=score,
        epochs=FEATURE_EPOCHS, lr=FEATURE_LR, patience=FEATURE_PATIENCE, seed=seed,
        progress=False)  # fmt: skip
    return model


# -- distillation ---------------------------------------------------------------------------
def student_config() -> StudentConfig:
    """The course's student on the Clothing feature inputs, one task (``recommended``)."""
    return StudentConfig(clothing_text().task.features, (TASK,), hidden=(32,))


def _student_part(split: str, rows: np.ndarray) -> dict[str, torch.Tensor]:
    column = clothing_text().task.task_names.index(TASK)
    part = _part(split, rows, minilm=False)
    return {**part, "labels": part["labels"][:, [column]]}


def distil(teacher: YesNoScorer, tokenizer, size: int, seed: int) -> dict[str, float]:
    """Students from ``teacher`` and from labels alone; their test AUCs and throughputs."""
    data = clothing_text()
    labelled, order = training_rows(size, seed), training_rows(None, seed)
    transfer = order[size : size + TRANSFER_ROWS]  # unlabelled: the labels are withheld
    rows = np.concatenate([labelled, transfer])
    tensors = {**_student_part("train", rows), **encode_prompts(
        tokenizer, [data.prompts["train"][i] for i in rows])}  # fmt: skip
    tensors["labels"][len(labelled) :] = float("nan")
    valid, test = _student_part("valid", data.valid_rows), _student_part("test", data.test_rows)
    set_seed(seed)
    distiller = Distiller(StudentMLP(student_config()), teacher, DISTILL)
    cached = distiller.cache_teacher(tensors, batch_size=64)
    cached = {k: v for k, v in cached.items() if k not in ("input_ids", "attention_mask")}
    fit_selected(distiller, cached, lambda d: click_auc(d.student, valid), seed=seed)
    distiller.close()
    student = distiller.student
    set_seed(seed)  # the control: the same student trained on the labels alone
    labels_only = fit_selected(StudentMLP(student_config()), _student_part("train", labelled),
                               lambda m: click_auc(m, valid), seed=seed)  # fmt: skip
    return {
        "student+kd": click_auc(student, test),
        "student": click_auc(labels_only, test),
        "student_rows_per_s": rows_per_second(lambda: student(test), len(data.test_rows)),
    }


@torch.no_grad()
def rows_per_second(call, rows: int, *, repeats: int = 3) -> float:
    """Best-of-``repeats`` rows per second of ``call()`` (one pass over ``rows`` rows)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return rows / best
