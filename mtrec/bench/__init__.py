"""Throughput harness behind ``mtrec bench``: models × device × precision × batch × phase.

How a number is taken (the same for every model): synthetic inputs of the model's real shapes and
dtypes (random ids in range, random floats; never zeros, which hit fast paths real data does not),
fixed seeds; untimed warm-up steps; every timed step followed by a CUDA-only synchronize; the
median and p90 of the per-step times (:mod:`~mtrec.bench.timing`). FLOPs come from a
Transformer's config or torch's flop counter, against a matmul and a copy ceiling measured in the
same run (:mod:`~mtrec.bench.flops`). Goals are ratios measured side by side in one run
(:mod:`~mtrec.bench.goals`, :mod:`~mtrec.bench.compare`).

Modules, in reading order: ``timing``, ``inputs``, ``flops``, ``baselines`` (the loop
implementations compared against), ``cases`` (the models and the one list of their names),
``measure``, ``goals``, ``compare`` (with ``text_speed`` and ``serve_speed``), ``run`` (the
command: ``add_arguments`` and ``main``); ``profile`` and ``allocator`` explain where a CPU step's
time goes (notebook 10).
"""

from mtrec.bench.baselines import (
    LoopMMoE,
    LoopPLE,
    PerSampleDataset,
    every_tower_forward,
    mtrec_train_epoch,
    naive_train_epoch,
)
from mtrec.bench.built import TASKS, Built, Case, Unavailable
from mtrec.bench.cases import (
    ATTENTION_SHAPES,
    ENCDEC,
    ENCDEC_SRC,
    ENCDEC_TGT,
    FLOP_MODELS,
    GROUPS,
    MODEL_NAMES,
    SASREC,
    attention_built,
    attention_name,
    benchmark_pair,
    encoder_decoder_case,
    model_cases,
    multitask_case,
    multitask_model,
    naive_multitask_model,
    sasrec_case,
    student_case,
    teacher_case,
)
from mtrec.bench.compare import (
    COMPARISONS,
    FUSED_ATTENTION_OPS,
    compare_attention,
    compare_distill,
    compare_multitask,
    fused_attention_goal,
    fused_attention_kernels,
    star_scenario_cost,
)
from mtrec.bench.flops import (
    ceiling_matmul,
    copy_ceiling,
    counted_flops,
    matmul_ceiling,
    transformer_flops,
)
from mtrec.bench.goals import (
    ceiling_beside_matmul,
    ceiling_goals,
    ceiling_target,
    compare_goal,
    goal_passes,
    goal_row,
    median_pass,
    median_ratio_pass,
    ratio_goal,
    unavailable_goal,
)
from mtrec.bench.inputs import click_batch, click_features, move, review_texts
from mtrec.bench.measure import (
    Context,
    compare_builds,
    environment,
    flops_per_sample,
    make_steps,
    measure_case,
    row,
    timing_rows,
)
from mtrec.bench.run import add_arguments, measure_device
from mtrec.bench.scenario_cases import every_tower_built, router_built, star_built, star_case
from mtrec.bench.serve_speed import compare_serving
from mtrec.bench.text_speed import compare_text
from mtrec.bench.timing import SEED, Settings, Timing, time_interleaved, time_steps

__all__ = [
    "ATTENTION_SHAPES", "COMPARISONS", "ENCDEC", "ENCDEC_SRC", "ENCDEC_TGT", "FLOP_MODELS",
    "FUSED_ATTENTION_OPS", "GROUPS", "MODEL_NAMES", "SASREC", "SEED", "TASKS", "Built", "Case",
    "Context", "LoopMMoE", "LoopPLE", "PerSampleDataset", "Settings", "Timing", "Unavailable",
    "add_arguments", "attention_built", "attention_name", "benchmark_pair",
    "ceiling_beside_matmul", "ceiling_goals", "ceiling_matmul", "ceiling_target", "click_batch",
    "click_features", "compare_attention", "compare_builds", "compare_distill", "compare_goal",
    "compare_multitask", "compare_serving", "compare_text", "copy_ceiling", "counted_flops",
    "encoder_decoder_case", "environment", "every_tower_built", "every_tower_forward",
    "flops_per_sample", "fused_attention_goal", "fused_attention_kernels", "goal_passes",
    "goal_row", "make_steps", "matmul_ceiling", "measure_case", "measure_device", "median_pass",
    "median_ratio_pass", "model_cases", "move", "mtrec_train_epoch", "multitask_case",
    "multitask_model", "naive_multitask_model", "naive_train_epoch", "ratio_goal", "review_texts",
    "router_built", "row", "sasrec_case", "star_built", "star_case", "star_scenario_cost",
    "student_case", "teacher_case", "time_interleaved", "time_steps", "timing_rows",
    "transformer_flops", "unavailable_goal",
]  # fmt: skip
