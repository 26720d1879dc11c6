"""The benchmarked models: one builder per model (batch size → model and synthetic batch).

Each :class:`Case` is a model at the size of its notebook (or of its real dataset), with the batch
sizes to sweep on CPU, in ``--quick`` mode and on GPU. :data:`MODEL_NAMES` is the one list of the
names ``mtrec bench`` measures, which the report lists (and marks "not available" when absent).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mtrec.bench.baselines import LoopMMoE, LoopPLE
from mtrec.bench.built import TASKS, Built, Case
from mtrec.bench.flops import transformer_flops
from mtrec.bench.inputs import click_batch, click_features
from mtrec.bench.scenario_cases import SCENARIO_MODELS, scenario_case, star_case
from mtrec.bench.timing import SEED
from mtrec.data import Batch
from mtrec.data.schema import TextFeature
from mtrec.models.multitask.mmoe import MMoE, MMoEConfig
from mtrec.models.multitask.ple import PLE, PLEConfig
from mtrec.models.of_record import (
    student_config,
    throughput_teacher_config,
)
from mtrec.models.sequential.sasrec import SASRec, SASRecConfig
from mtrec.models.student import StudentMLP
from mtrec.nn.attention import MultiHeadAttention
from mtrec.nn.encoder_decoder import EncoderDecoder, EncoderDecoderConfig

# ----------------------------------------------------------------------------- attention
ATTENTION_SHAPES = ((64, 200, 64, 2), (32, 512, 256, 8))  # (B, L, D, H): a small and a large block


def attention_name(impl: str, length: int, d_model: int, heads: int) -> str:
    """The row name of an attention block: ``attention-mtrec L200 D64 H2``."""
    return f"attention-{impl} L{length} D{d_model} H{heads}"


def attention_built(impl: str, batch_size: int, length: int, d_model: int, heads: int) -> Built:
    """Self-attention forward + backward on (B, L, D) inputs; mtrec's block or torch's."""
    if impl == "mtrec":
        module = MultiHeadAttention(d_model, heads)
    else:
        module = nn.MultiheadAttention(d_model, heads, batch_first=True)
    g = torch.Generator().manual_seed(SEED)
    x = torch.randn(batch_size, length, d_model, generator=g)

    def forward(batch: Batch) -> Tensor:
        x = batch["x"]
        out = module(x, x, x) if impl == "mtrec" else module(x, x, x, need_weights=False)
        return out[0] if isinstance(out, (tuple, list)) else out  # (output, weights) → output

    flops = transformer_flops(d_model=d_model, d_ff=0, src_len=length, enc_layers=1)
    return Built(
        module,
        {"x": x.requires_grad_(False)},
        flops_per_sample=flops,
        loss=lambda b: forward(b).float().square().mean(),
        predict=forward,
        optimizer=False,
    )


# ----------------------------------------------------------------------------- multi-task
MULTITASK_BATCH = 2048  # the side-by-side comparison: batch 2048, 8 experts, embedding 16
MULTITASK_EXPERTS = 8
EXPERT_HIDDEN = (64, 32)
TOWER_HIDDEN = (16,)
PLE_SPECIFIC, PLE_SHARED = 3, 2  # per level: T·K_s + K_sh = 2·3 + 2 = 8 experts


def multitask_model(kind: str, features: Sequence[Any]) -> nn.Module:
    """mtrec's MMoE or PLE on the click schema: 8 experts (64, 32), two task towers (16,)."""
    if kind == "mmoe":
        return MMoE(
            MMoEConfig(
                features=tuple(features),
                num_tasks=len(TASKS),
                num_experts=MULTITASK_EXPERTS,
                expert_hidden=EXPERT_HIDDEN,
                tower_hidden=TOWER_HIDDEN,
            )
        )
    config = PLEConfig(
        features=tuple(features),
        num_tasks=len(TASKS),
        num_levels=2,
        num_specific=PLE_SPECIFIC,
        num_shared=PLE_SHARED,
        expert_hidden=EXPERT_HIDDEN,
        tower_hidden=TOWER_HIDDEN,
    )
    return PLE(config)


def naive_multitask_model(kind: str, features: Sequence[Any]) -> nn.Module:
    """The loop baseline in the same configuration as :func:`multitask_model`."""
    if kind == "mmoe":
        return LoopMMoE(
            features,
            num_experts=MULTITASK_EXPERTS,
            expert_hidden=EXPERT_HIDDEN,
            tower_hidden=TOWER_HIDDEN,
            num_tasks=len(TASKS),
        )
    return LoopPLE(
        features,
        num_levels=2,
        num_specific=PLE_SPECIFIC,
        num_shared=PLE_SHARED,
        expert_hidden=EXPERT_HIDDEN,
        tower_hidden=TOWER_HIDDEN,
        num_tasks=len(TASKS),
    )


def multitask_case(kind: str) -> Case:
    """mtrec's MMoE or PLE (:func:`multitask_model`) on seeded click-log batches."""

    def build(batch_size: int) -> Built:
        features = click_features()
        model = multitask_model(kind, features)
        return Built(model, click_batch(features, batch_size, num_tasks=len(TASKS)))

    return Case(kind, build, (1, 64, 1024, 4096), (1, 64, 1024), (1, 64, 1024, 4096, 16384))


# ----------------------------------------------------------------------------- distillation
def benchmark_pair(
    *,
    num_users: int = 944,
    num_items: int = 1683,
    text_dim: int = 384,
    task_names: tuple[str, ...] = ("watch", "like"),
) -> tuple[nn.Module, nn.Module, Callable[[int], Batch]]:
    """The teacher/student pair of notebook 09 at real (ML-100k) sizes, for throughput tables.

    Teacher: an MMoE (:func:`~mtrec.models.of_record.throughput_teacher_config`: 8 experts of
    widths (512, 256), towers (64,)) over user and item ids (16-d embeddings) and a 384-d
    language-model item-text embedding. Student: the ID-only
    :class:`~mtrec.models.student.StudentMLP` of
    :func:`~mtrec.models.of_record.student_config` (16-d id embeddings, one hidden layer of 32).

    Returns:
        (teacher, student, example_batch_fn); ``example_batch_fn(batch_size)`` gives a random
        batch with every key either model reads (``user_id``, ``item_id``, ``item_text``) plus
        ``labels`` (B, T). Both models are in eval mode on the CPU.
    """
    student_cfg = student_config(num_users, num_items, task_names)
    features = (*student_cfg.features, TextFeature("item_text", text_dim))
    teacher = MMoE(throughput_teacher_config(features, len(task_names))).eval()
    student = StudentMLP(student_cfg).eval()

    def example_batch(batch_size: int) -> Batch:
        generator = torch.Generator().manual_seed(batch_size)
        return {
            "user_id": torch.randint(1, num_users, (batch_size,), generator=generator),
            "item_id": torch.randint(1, num_items, (batch_size,), generator=generator),
            "item_text": F.normalize(
                torch.randn(batch_size, text_dim, generator=generator), dim=-1
            ),
            "labels": torch.randint(
                0, 2, (batch_size, len(task_names)), generator=generator
            ).float(),
        }

    return teacher, student, example_batch


def _distill_pair_case(role: str) -> Case:
    """The teacher (LM-feature MMoE) or student (ID-only MLP) of :func:`benchmark_pair`."""

    def build(batch_size: int) -> Built:
        teacher, student, example_batch = benchmark_pair()
        return Built(student if role == "student" else teacher, example_batch(batch_size))

    name = "distilled-student" if role == "student" else "distill-teacher"
    return Case(name, build, (1, 64, 1024, 4096), (1, 1024))


def student_case() -> Case:
    """The distilled student of notebook 09, real size: an ID-only MLP (16-d ids, one hidden layer of 32)."""
    return _distill_pair_case("student")


def teacher_case() -> Case:
    """The teacher of notebook 09, real size: an MMoE (8 experts (512, 256)), ids and 384-d text."""
    return _distill_pair_case("teacher")


# ----------------------------------------------------------------------------- transformers
ENCDEC = dict(
    src_vocab=1700,
    tgt_vocab=1700,
    d_model=256,
    num_heads=8,
    num_encoder_layers=2,
    num_decoder_layers=2,
    d_ff=1024,
    max_len=64,
)  # ML-100k-sized item vocabulary
ENCDEC_SRC, ENCDEC_TGT = 64, 16  # history length in, items out


def encoder_decoder_case() -> Case:
    """The Transformer encoder-decoder of notebook 03 (teacher-forced next items), 2+2 layers, D=256."""

    def build(batch_size: int) -> Built:
        config = EncoderDecoderConfig(**ENCDEC)
        model = EncoderDecoder(config)
        g = torch.Generator().manual_seed(SEED)
        batch = {
            "src": torch.randint(2, config.src_vocab, (batch_size, ENCDEC_SRC), generator=g),
            "tgt": torch.randint(2, config.tgt_vocab, (batch_size, ENCDEC_TGT), generator=g),
        }
        flops = transformer_flops(
            d_model=config.d_model,
            d_ff=config.d_ff,
            src_len=ENCDEC_SRC,
            enc_layers=config.num_encoder_layers,
            tgt_len=ENCDEC_TGT,
            dec_layers=config.num_decoder_layers,
            out_dim=config.tgt_vocab,
        )
        return Built(
            model,
            batch,
            flops_per_sample=flops,
            predict=lambda b: model(b["src"], model.shift_right(b["tgt"])),
        )

    return Case("encoder-decoder", build, (1, 64, 256), (1, 64), (1, 64, 256, 1024, 4096))


SASREC = dict(num_items=1682, max_len=50, d_model=64, num_heads=1, num_layers=2, d_ff=64)


def sasrec_case() -> Case:
    """SASRec of notebook 03 at ML-100k size (1682 items, L=50, D=64, full-softmax loss)."""

    def build(batch_size: int) -> Built:
        config = SASRecConfig(**SASREC)
        g = torch.Generator().manual_seed(SEED)
        # full-length histories: every position has a target, so the FLOP count is exact
        items = torch.randint(
            1, config.num_items + 1, (batch_size, config.max_len + 1), generator=g
        )
        batch = {"item_ids": items[:, :-1], "targets": items[:, 1:]}
        model = SASRec(config)
        encoder = transformer_flops(
            d_model=config.d_model,
            d_ff=config.d_ff,
            src_len=config.max_len,
            enc_layers=config.num_layers,
        )
        full_softmax = 2 * config.d_model * config.num_items
        return Built(
            model,
            batch,
            flops_per_sample=encoder + config.max_len * full_softmax,
            inference_flops_per_sample=encoder + full_softmax,
            predict=lambda b: model.scores(b["item_ids"]),
        )

    return Case("sasrec", build, (1, 64, 256, 1024), (1, 64, 256), (1, 64, 1024, 4096))


# ----------------------------------------------------------------------------- the names
GROUPS = (
    "attention", "encoder_decoder", "sasrec", "mmoe", "ple", "star", "scenario", "distill", "text",
    "serve", "checks",
)  # fmt: skip


def model_cases() -> dict[str, list[Case]]:
    """Benchmarked models by group (``--models`` picks groups)."""
    return {
        "attention": [],  # measured side by side with torch.nn.MultiheadAttention
        "encoder_decoder": [encoder_decoder_case()],
        "sasrec": [sasrec_case()],
        "mmoe": [multitask_case("mmoe")],
        "ple": [multitask_case("ple")],
        "star": [star_case()],
        "scenario": [scenario_case(name) for name in SCENARIO_MODELS],  # + routing-cost goals
        "distill": [student_case(), teacher_case()],
        "text": [],  # TextEncoder: measured side by side with sentence-transformers
        "serve": [],  # exported student and MMoE: onnxruntime side by side with torch eager
        "checks": [],  # train epochs with and without the input checks (bench.checks_cost)
    }


TEXT_ENCODER = "text-encoder-mtrec"
# the models of model_cases() whose train step is compared with the matmul ceiling; the small
# multi-scenario MLPs (group "scenario") are measured for throughput and routing cost only
FLOP_MODELS = tuple(
    case.name for group, cases in model_cases().items() if group != "scenario" for case in cases
)
# every model `mtrec bench` measures, in the order of the report's tables
MODEL_NAMES = (
    *(attention_name("mtrec", length, d, heads) for _, length, d, heads in ATTENTION_SHAPES),
    *FLOP_MODELS,
    *SCENARIO_MODELS,
    TEXT_ENCODER,
    f"{TEXT_ENCODER} int8",  # the fast text path (onnxruntime, int8 linear layers)
    "distilled-student-onnxruntime",  # the exported student served by onnxruntime
    "distill-teacher-onnxruntime",  # the exported MMoE scorer served by onnxruntime
)
