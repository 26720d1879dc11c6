"""Throughput harness behind ``mtrec bench``: models × device × precision × batch × phase.

How a number is taken (the same for every model):

* synthetic inputs of the model's real shapes and dtypes (random ids in range, random floats;
  never zeros, which hit fast paths real data does not), fixed seeds;
* ``warmup`` untimed steps first (allocator, thread pool, cuDNN/oneDNN autotuning, lazy init);
* each timed step ends with :func:`mtrec.utils.synchronize` (a no-op on CPU; on CUDA the kernels
  are queued asynchronously and the clock would otherwise stop before they ran);
* the median (p50) and p90 of the per-step wall times; samples/s = batch size / p50;
* peak memory: ``torch.cuda.max_memory_allocated`` on GPU; on CPU the process resident set size
  (RSS) sampled after every step: it includes everything the process holds (Python, earlier
  cases), so it is an upper bound for the case.

A train step is ``zero_grad → loss (fwd) → backward → Adam step``; inference is ``predict`` under
``torch.inference_mode``. On CUDA both run in fp32 and in bf16 autocast. ``--compile`` adds
``torch.compile``-d rows.

Ceilings, measured in the same run: a large matmul (fp32 on CPU, bf16 on GPU; row
``ceiling/matmul``, ``gflops_per_s``) and a large device copy (row ``ceiling/copy``:
``batch_size`` = bytes per copy, ``samples_per_s`` = copies/s; GB/s = 2 · bytes · copies/s, read
plus write). For transformer models ``gflops_per_s`` is counted from the config
(:func:`transformer_flops`) and ``ceiling_fraction`` = achieved / matmul ceiling; other models use
the FLOPs that ``torch.utils.flop_counter`` counts for one step.

Side-by-side comparisons (ratios in one run, ``benchmarks/results/goals.csv``): mtrec's MMoE and
PLE against a typical open-source implementation written here (experts in a Python loop, a
per-sample ``DataLoader``), STAR's cost against the number of scenarios, MultiHeadAttention
against ``torch.nn.MultiheadAttention``, TextEncoder against ``SentenceTransformer.encode`` and
its cache, the distilled student against its teacher.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import logging
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from mtrec.utils import REPO_ROOT, env_info, get_device, git_commit, set_seed, synchronize

log = logging.getLogger(__name__)
Batch = dict[str, Tensor]
SEED = 0
GOALS_CSV = REPO_ROOT / "benchmarks" / "results" / "goals.csv"
GOAL_COLUMNS = ["goal", "issue", "device", "measured", "target", "met", "detail", "commit", "date"]


class Unavailable(RuntimeError):
    """A model's module is not in this checkout (or an optional dependency is missing)."""


# ----------------------------------------------------------------------------- timing


def _rss_mb() -> float:
    """Current resident set size of this process in MiB (peak RSS when psutil is absent)."""
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:  # ru_maxrss is KiB on Linux, bytes on macOS
        scale = 1 if sys.platform == "darwin" else 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


@dataclass
class Timing:
    """Per-step wall times (ms) of one case and its peak memory (MiB)."""

    times_ms: list[float]
    peak_mem_mb: float
    batch_size: int

    @property
    def ms_p50(self) -> float:
        return float(np.percentile(self.times_ms, 50))

    @property
    def ms_p90(self) -> float:
        return float(np.percentile(self.times_ms, 90))

    @property
    def samples_per_s(self) -> float:
        return self.batch_size / (self.ms_p50 / 1e3)


def time_steps(
    step: Callable[[], Any],
    *,
    device: torch.device,
    batch_size: int,
    warmup: int = 3,
    repeats: int = 10,
    budget_s: float | None = None,
    min_repeats: int = 3,
) -> Timing:
    """Time ``step()`` properly: warm-up, synchronize after each step (CUDA only), percentiles.

    Args:
        step: one training or inference step (no arguments).
        device: where the step's kernels run; :func:`mtrec.utils.synchronize` waits for them.
        batch_size: samples per step, for samples/s.
        warmup: untimed steps first.
        repeats: timed steps.
        budget_s: stop timing after this many seconds (but only after ``min_repeats`` steps).
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got {repeats} and {warmup}")
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(warmup):
        step()
    synchronize(device)
    times: list[float] = []
    peak = 0.0
    started = time.perf_counter()
    for i in range(repeats):
        t0 = time.perf_counter()
        step()
        synchronize(device)
        times.append((time.perf_counter() - t0) * 1e3)
        if not cuda:
            peak = max(peak, _rss_mb())
        if (
            budget_s is not None
            and i + 1 >= min_repeats
            and time.perf_counter() - started > budget_s
        ):
            break
    if cuda:
        peak = torch.cuda.max_memory_allocated(device) / 2**20
    return Timing(times, peak, batch_size)


# ----------------------------------------------------------------------------- FLOPs


def transformer_flops(
    *,
    d_model: int,
    d_ff: int,
    src_len: int,
    enc_layers: int,
    tgt_len: int = 0,
    dec_layers: int = 0,
    out_dim: int = 0,
    train: bool = False,
) -> float:
    """FLOPs of one sample through a Transformer, counted from its configuration.

    Per token and layer: Q, K, V, O projections ``8 D²``, feed-forward ``4 D D_ff``, attention
    scores and weighted sum ``4 L D`` (full L×L, as the kernels compute it even when masked). A
    decoder layer adds cross-attention (``4 D²`` on target tokens for Q and O, ``4 D²`` per source
    token for K and V, ``4 L_src D`` per target token). ``out_dim`` adds an output projection
    ``2 D out_dim`` per output token (encoder tokens when there is no decoder). Training counts
    3× the forward pass (backward ≈ 2× forward). Embedding lookups, norms and softmax are ignored.
    """
    d, f = d_model, d_ff
    enc = src_len * enc_layers * (8 * d * d + 4 * d * f + 4 * src_len * d)
    dec_per_layer = tgt_len * (
        8 * d * d + 4 * tgt_len * d + 4 * d * d + 4 * src_len * d + 4 * d * f
    )
    dec = dec_layers * (dec_per_layer + src_len * 4 * d * d)
    out_tokens = tgt_len if dec_layers else src_len
    forward = enc + dec + out_tokens * 2 * d * out_dim
    return float(forward * (3 if train else 1))


def counted_flops(step: Callable[[], Any]) -> float | None:
    """FLOPs that ``torch.utils.flop_counter`` sees in one call of ``step`` (None if unsupported)."""
    try:
        from torch.utils.flop_counter import FlopCounterMode
    except ImportError:
        return None
    counter = FlopCounterMode(display=False)
    with counter:
        step()
    return float(counter.get_total_flops())


# ----------------------------------------------------------------------------- ceilings


def matmul_ceiling(device: torch.device, *, n: int | None = None, quick: bool = False) -> dict:
    """Achieved FLOP/s of an n×n matmul: fp32 on CPU, bf16 on GPU (the best the device does)."""
    cuda = device.type == "cuda"
    n = n or (8192 if cuda else (1024 if quick else 2048))
    dtype = torch.bfloat16 if cuda else torch.float32
    g = torch.Generator(device="cpu").manual_seed(SEED)
    a = torch.randn(n, n, generator=g).to(device, dtype)
    b = torch.randn(n, n, generator=g).to(device, dtype)
    timing = time_steps(
        lambda: torch.mm(a, b),
        device=device,
        batch_size=1,
        warmup=2,
        repeats=10 if cuda else 5,
        budget_s=2.0,
    )
    flops = 2.0 * n**3
    best_ms = min(timing.times_ms)  # a ceiling: the best step, not the median
    return {
        "model": "ceiling/matmul",
        "precision": "bf16" if cuda else "fp32",
        "batch_size": n,
        "phase": "ceiling",
        "timing": timing,
        "gflops_per_s": flops / (best_ms / 1e3) / 1e9,
    }


def copy_ceiling(device: torch.device, *, quick: bool = False) -> dict:
    """Achieved bandwidth of a large device-to-device copy (``dst.copy_(src)``)."""
    cuda = device.type == "cuda"
    numel = 2**28 if cuda else 2**24 if quick else 2**26  # 1 GiB / 64 MiB / 256 MiB of fp32
    src = torch.rand(numel, device=device)
    dst = torch.empty_like(src)
    timing = time_steps(
        lambda: dst.copy_(src), device=device, batch_size=1, warmup=2, repeats=10, budget_s=2.0
    )
    nbytes = numel * 4
    return {
        "model": "ceiling/copy",
        "precision": "fp32",
        "batch_size": nbytes,
        "phase": "ceiling",
        "timing": timing,
        "gb_per_s": 2 * nbytes / (min(timing.times_ms) / 1e3) / 1e9,
    }


# ----------------------------------------------------------------------------- synthetic inputs


def synthetic_batch(
    features: Sequence[Any],
    batch_size: int,
    *,
    num_tasks: int = 0,
    generator: torch.Generator | None = None,
) -> Batch:
    """Random inputs of the declared features' real shapes (ids in range, padded sequences).

    Sparse ids are drawn from ``1..vocab-1`` (0 is OOV), sequences get random lengths with 0
    padding after them, dense and text features are standard normal. ``num_tasks`` adds
    ``"labels"`` (B, T) of 0/1 floats.
    """
    from mtrec.data.schema import DenseFeature, SequenceFeature, SparseFeature, TextFeature

    g = generator or torch.Generator().manual_seed(SEED)
    batch: Batch = {}
    for f in features:
        if isinstance(f, SparseFeature):
            batch[f.name] = torch.randint(1, f.vocab_size, (batch_size,), generator=g)
        elif isinstance(f, SequenceFeature):
            ids = torch.randint(1, f.vocab_size, (batch_size, f.max_len), generator=g)
            lengths = torch.randint(1, f.max_len + 1, (batch_size, 1), generator=g)
            batch[f.name] = ids * (torch.arange(f.max_len) < lengths)
        elif isinstance(f, (DenseFeature, TextFeature)):
            batch[f.name] = torch.randn(batch_size, f.dim, generator=g).squeeze(-1)
        else:
            raise TypeError(f"cannot synthesise feature {f!r}")
    if num_tasks:
        batch["labels"] = (torch.rand(batch_size, num_tasks, generator=g) < 0.3).float()
    return batch


def click_features(num_sparse: int = 8, *, embed_dim: int = 16, vocab: int = 1000) -> tuple:
    """The synthetic click-log schema of the multi-task benchmark: sparse ids, two dense values."""
    from mtrec.data.schema import DenseFeature, SparseFeature

    sparse = tuple(SparseFeature(f"f{i}", vocab, embed_dim) for i in range(num_sparse))
    return (*sparse, DenseFeature("dense", 2))


def _import(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise Unavailable(f"{module} is not available in this checkout ({err})") from err


# ----------------------------------------------------------------------------- naive baselines
# A "typical open-source implementation" of MMoE and PLE, written the way many public repositories
# write them: one embedding call per feature, experts and gates in Python loops, sigmoid + BCELoss,
# and a per-sample Dataset batched by torch's DataLoader (default collate of B dicts per batch).
# They exist only as the baseline of the side-by-side comparison; mtrec never uses them.


def _loop_mlp(in_dim: int, hidden: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), nn.ReLU()]
        in_dim = width
    return nn.Sequential(*layers)


class _LoopInput(nn.Module):
    """Per-feature embedding calls in a loop, concatenated with the dense columns."""

    def __init__(self, features: Sequence[Any]) -> None:
        super().__init__()
        from mtrec.data.schema import SparseFeature

        self.sparse = [f.name for f in features if isinstance(f, SparseFeature)]
        self.dense = [f for f in features if not isinstance(f, SparseFeature)]
        self.embeddings = nn.ModuleDict(
            {
                f.name: nn.Embedding(f.vocab_size, f.embed_dim)
                for f in features
                if f.name in self.sparse
            }
        )
        self.out_dim = sum(f.embed_dim for f in features if f.name in self.sparse) + sum(
            f.dim for f in self.dense
        )

    def forward(self, x: Batch) -> Tensor:
        parts = [self.embeddings[name](x[name].long()) for name in self.sparse]
        parts += [x[f.name].float().reshape(len(parts[0]), -1) for f in self.dense]
        return torch.cat(parts, dim=1)


class LoopMMoE(nn.Module):
    """MMoE as commonly written: experts, gates and towers each called in a Python loop."""

    def __init__(
        self,
        features: Sequence[Any],
        *,
        num_experts: int,
        expert_hidden: Sequence[int],
        tower_hidden: Sequence[int],
        num_tasks: int,
    ) -> None:
        super().__init__()
        self.input = _LoopInput(features)
        d = self.input.out_dim
        self.experts = nn.ModuleList(_loop_mlp(d, expert_hidden) for _ in range(num_experts))
        self.gates = nn.ModuleList(
            nn.Sequential(nn.Linear(d, num_experts), nn.Softmax(dim=1)) for _ in range(num_tasks)
        )
        self.towers = nn.ModuleList(
            nn.Sequential(
                _loop_mlp(expert_hidden[-1], tower_hidden),
                nn.Linear(([expert_hidden[-1], *tower_hidden])[-1], 1),
            )
            for _ in range(num_tasks)
        )

    def forward(self, x: Batch) -> Tensor:
        emb = self.input(x)
        expert_outs = torch.cat([expert(emb).unsqueeze(1) for expert in self.experts], dim=1)
        outs = []
        for gate, tower in zip(self.gates, self.towers):
            weights = gate(emb).unsqueeze(-1)  # (B, E, 1)
            outs.append(torch.sigmoid(tower(torch.sum(weights * expert_outs, dim=1))))
        return torch.cat(outs, dim=1)  # (B, T) probabilities


class LoopPLE(nn.Module):
    """PLE (CGC levels) as commonly written: task/shared experts and gates in Python loops."""

    def __init__(
        self,
        features: Sequence[Any],
        *,
        num_levels: int,
        num_specific: int,
        num_shared: int,
        expert_hidden: Sequence[int],
        tower_hidden: Sequence[int],
        num_tasks: int,
    ) -> None:
        super().__init__()
        self.input = _LoopInput(features)
        self.num_tasks, self.num_levels = num_tasks, num_levels
        d_in, d_out = self.input.out_dim, expert_hidden[-1]
        self.levels = nn.ModuleList()
        for level in range(num_levels):
            width = d_in if level == 0 else d_out
            last = level == num_levels - 1
            n_gates_in = num_specific + num_shared
            block = nn.ModuleDict(
                {
                    "specific": nn.ModuleList(
                        nn.ModuleList(_loop_mlp(width, expert_hidden) for _ in range(num_specific))
                        for _ in range(num_tasks)
                    ),
                    "shared": nn.ModuleList(
                        _loop_mlp(width, expert_hidden) for _ in range(num_shared)
                    ),
                    "gates": nn.ModuleList(
                        nn.Sequential(nn.Linear(width, n_gates_in), nn.Softmax(dim=1))
                        for _ in range(num_tasks)
                    ),
                }
            )
            if not last:
                total = num_tasks * num_specific + num_shared
                block["shared_gate"] = nn.Sequential(nn.Linear(width, total), nn.Softmax(dim=1))
            self.levels.append(block)
        self.towers = nn.ModuleList(
            nn.Sequential(
                _loop_mlp(d_out, tower_hidden), nn.Linear(([d_out, *tower_hidden])[-1], 1)
            )
            for _ in range(num_tasks)
        )

    def forward(self, x: Batch) -> Tensor:
        emb = self.input(x)
        inputs = [emb] * self.num_tasks + [emb]
        for level, block in enumerate(self.levels):
            specific = [[e(inputs[t]) for e in block["specific"][t]] for t in range(self.num_tasks)]
            shared = [e(inputs[-1]) for e in block["shared"]]
            outs = []
            for t in range(self.num_tasks):
                stacked = torch.stack(specific[t] + shared, dim=1)  # (B, E_t + E_s, D)
                weights = block["gates"][t](inputs[t]).unsqueeze(-1)
                outs.append(torch.sum(weights * stacked, dim=1))
            if level < self.num_levels - 1:
                every = torch.stack([o for group in specific for o in group] + shared, dim=1)
                weights = block["shared_gate"](inputs[-1]).unsqueeze(-1)
                outs.append(torch.sum(weights * every, dim=1))
            inputs = outs
        return torch.cat(
            [torch.sigmoid(tower(inputs[t])) for t, tower in enumerate(self.towers)], dim=1
        )


class PerSampleDataset(torch.utils.data.Dataset):
    """One dict of numpy scalars per ``__getitem__``; torch's DataLoader collates B of them."""

    def __init__(self, columns: Batch) -> None:
        self.columns = {k: v.numpy() for k, v in columns.items()}
        self.length = len(next(iter(self.columns.values())))

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        return {k: v[index] for k, v in self.columns.items()}


def naive_train_epoch(model: nn.Module, loader: Any, optimizer: torch.optim.Optimizer) -> int:
    """One epoch of the typical loop: BCELoss on sigmoid outputs, summed over tasks."""
    criterion = nn.BCELoss()
    rows = 0
    model.train()
    for batch in loader:
        probs = model(batch)
        labels = batch["labels"].float()
        loss = sum(criterion(probs[:, t], labels[:, t]) for t in range(probs.shape[1]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        rows += len(labels)
    return rows


def mtrec_train_epoch(model: nn.Module, batches: Any, optimizer: torch.optim.Optimizer) -> int:
    """One epoch the mtrec way: tensor-sliced batches, ``model.loss`` (logits, per-task vector)."""
    rows = 0
    model.train()
    for batch in batches:
        loss = model.loss(batch)
        loss = loss.sum() if loss.ndim else loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        rows += len(batch["labels"])
    return rows


# ----------------------------------------------------------------------------- model cases


@dataclass
class Built:
    """A model ready to time: its synthetic batch and how to count its FLOPs.

    ``flops_per_sample`` is the forward FLOPs of one sample counted from the config (transformer
    models); ``None`` falls back to ``torch.utils.flop_counter`` on one step. ``loss`` and
    ``predict`` default to the model's own methods; ``optimizer=False`` times forward + backward
    only (the attention block).
    """

    model: nn.Module
    batch: Batch
    flops_per_sample: float | None = None
    loss: Callable[[Batch], Tensor] | None = None
    predict: Callable[[Batch], Tensor] | None = None
    optimizer: bool = True
    phases: tuple[str, ...] = ("train", "inference")
    inference_flops_per_sample: float | None = None  # when inference computes less (SASRec)


@dataclass(frozen=True)
class Case:
    """A benchmarked model: a builder (batch size → Built) and the batch sizes to try."""

    name: str
    build: Callable[[int], Built]
    batch_sizes: tuple[int, ...]
    quick_batch_sizes: tuple[int, ...]
    cuda_batch_sizes: tuple[int, ...] = ()
    issue: int = 8
    train_min_batch: int = 1  # BatchNorm cannot train on one row


def _move(batch: Batch, device: torch.device) -> Batch:
    return {k: v.to(device) for k, v in batch.items()}


def make_steps(
    built: Built, device: torch.device, precision: str, compiled: bool = False
) -> dict[str, Callable[[], Any]]:
    """The train and inference step closures of ``built`` on ``device`` at ``precision``."""
    model = built.model.to(device)
    batch = _move(built.batch, device)
    loss_fn = built.loss or model.loss
    predict_fn = built.predict or model.predict
    if compiled:
        loss_fn, predict_fn = torch.compile(loss_fn), torch.compile(predict_fn)
    if precision == "bf16":
        autocast: Callable[[], Any] = lambda: torch.autocast(device.type, dtype=torch.bfloat16)  # noqa: E731
    else:
        autocast = contextlib.nullcontext
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4) if built.optimizer else None

    def train() -> None:
        model.train()
        if optimizer is not None:
            optimizer.zero_grad(set_to_none=True)
        with autocast():
            loss = loss_fn(batch)
        loss = loss.float()
        (loss.sum() if loss.ndim else loss).backward()
        if optimizer is not None:
            optimizer.step()
        else:
            model.zero_grad(set_to_none=True)

    def inference() -> None:
        model.eval()
        with torch.inference_mode(), autocast():
            predict_fn(batch)

    steps = {"train": train, "inference": inference}
    return {phase: steps[phase] for phase in built.phases}


def _fraction(gflops: float | None, ceiling: float | None) -> float:
    if gflops is None or not ceiling:
        return float("nan")
    return gflops / ceiling


def _environment(device: torch.device, note: str) -> dict[str, Any]:
    info = env_info()
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"{info['cpu']} ({torch.get_num_threads()} threads)"
    if note:
        name = f"{name} [{note}]"
    return {
        "device": device.type,
        "device_name": name,
        "cpu": info["cpu"],
        "cpu_cores": info["cpu_cores"],
        "torch": torch.__version__,
        "cuda": torch.version.cuda or "none",
        "commit": git_commit(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%MZ"),
    }


def _row(
    env: dict,
    *,
    model: str,
    precision: str,
    batch_size: int,
    phase: str,
    timing: Timing,
    compiled: bool = False,
    gflops: float | None = None,
    ceiling: float | None = None,
    samples_per_s: float | None = None,
) -> dict[str, Any]:
    return {
        **env,
        "model": model,
        "precision": precision,
        "batch_size": batch_size,
        "phase": phase,
        "samples_per_s": timing.samples_per_s if samples_per_s is None else samples_per_s,
        "ms_p50": timing.ms_p50,
        "ms_p90": timing.ms_p90,
        "peak_mem_mb": timing.peak_mem_mb,
        "compiled": bool(compiled),
        "gflops_per_s": float("nan") if gflops is None else gflops,
        "ceiling_fraction": _fraction(gflops, ceiling),
    }


def measure_case(
    case: Case,
    *,
    device: torch.device,
    precision: str,
    batch_sizes: Sequence[int],
    env: dict,
    ceiling: float | None,
    settings: Settings,
    compiled: bool = False,
) -> list[dict[str, Any]]:
    """Rows for one model on one device and precision, over its batch sizes and phases."""
    rows = []
    per_sample: dict[str, float | None] = {}  # FLOPs are linear in the batch: count them once
    for batch_size in batch_sizes:
        set_seed(SEED)
        try:
            built = case.build(batch_size)
            steps = make_steps(built, device, precision, compiled)
        except Unavailable:
            raise
        except torch.cuda.OutOfMemoryError:  # also raised by torch >= 2.5's alias
            log.warning("%s at batch %d does not fit on %s; skipped", case.name, batch_size, device)
            break
        for phase, step in steps.items():
            if phase == "train" and batch_size < case.train_min_batch:
                continue
            try:
                timing = time_steps(
                    step,
                    device=device,
                    batch_size=batch_size,
                    warmup=settings.warmup,
                    repeats=settings.repeats,
                    budget_s=settings.case_budget_s,
                )
            except torch.cuda.OutOfMemoryError:  # also raised by torch >= 2.5's alias
                log.warning("%s %s at batch %d: out of memory", case.name, phase, batch_size)
                continue
            if phase not in per_sample and not compiled:
                per_sample[phase] = flops_per_sample(built, phase, step, batch_size)
            flops = per_sample.get(phase)
            gflops = flops * batch_size / (timing.ms_p50 / 1e3) / 1e9 if flops else None
            rows.append(
                _row(
                    env,
                    model=case.name,
                    precision=precision,
                    batch_size=batch_size,
                    phase=phase,
                    timing=timing,
                    compiled=compiled,
                    gflops=gflops,
                    ceiling=ceiling,
                )
            )
            log.info(
                "%s %s %s B=%d: %.0f samples/s",
                case.name,
                phase,
                precision,
                batch_size,
                timing.samples_per_s,
            )
        del built, steps
    return rows


def flops_per_sample(
    built: Built, phase: str, step: Callable[[], Any], batch_size: int
) -> float | None:
    """Config-counted FLOPs (transformers; train = 3× forward) or the flop counter's, per sample."""
    if phase == "inference" and built.inference_flops_per_sample is not None:
        return built.inference_flops_per_sample
    if built.flops_per_sample is not None:
        return built.flops_per_sample * (3 if phase == "train" else 1)
    counted = counted_flops(step)
    return counted / batch_size if counted else None


def time_interleaved(
    steps: dict[str, Callable[[], Any]],
    *,
    device: torch.device,
    batch_size: int,
    warmup: int,
    repeats: int,
    budget_s: float,
    min_repeats: int = 3,
) -> dict[str, Timing]:
    """Time several steps in alternation (A B A B ...) so that load on a shared machine hits
    every side of a comparison alike; each step's own warm-up comes first."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    synchronize(device)
    times: dict[str, list[float]] = {name: [] for name in steps}
    started = time.perf_counter()
    for i in range(repeats):
        for name, step in steps.items():
            t0 = time.perf_counter()
            step()
            synchronize(device)
            times[name].append((time.perf_counter() - t0) * 1e3)
        if i + 1 >= min_repeats and time.perf_counter() - started > budget_s:
            break
    peak = _rss_mb() if device.type == "cpu" else torch.cuda.max_memory_allocated(device) / 2**20
    return {name: Timing(t, peak, batch_size) for name, t in times.items()}


def compare_builds(
    builders: dict[str, Callable[[], Built]],
    *,
    phase: str,
    batch_size: int,
    device: torch.device,
    env: dict,
    ceiling: float | None,
    settings: Settings,
) -> dict[str, dict[str, Any]]:
    """One row per named model, all timed in alternation at ``batch_size`` and ``phase``."""
    set_seed(SEED)
    builts = {name: build() for name, build in builders.items()}
    steps = {name: make_steps(b, device, "fp32")[phase] for name, b in builts.items()}
    timings = time_interleaved(
        steps,
        device=device,
        batch_size=batch_size,
        warmup=settings.warmup,
        repeats=settings.repeats,
        budget_s=settings.case_budget_s * len(steps),
    )
    rows = {}
    for name, timing in timings.items():
        flops = flops_per_sample(builts[name], phase, steps[name], batch_size)
        gflops = flops * batch_size / (timing.ms_p50 / 1e3) / 1e9 if flops else None
        rows[name] = _row(
            env,
            model=name,
            precision="fp32",
            batch_size=batch_size,
            phase=phase,
            timing=timing,
            gflops=gflops,
            ceiling=ceiling,
        )
    return rows


@dataclass
class Settings:
    """How hard to measure: ``--quick`` lowers repeats and per-case budgets."""

    quick: bool = False
    warmup: int = 3
    repeats: int = 10
    case_budget_s: float = 3.0

    @classmethod
    def from_quick(cls, quick: bool) -> Settings:
        if quick:
            return cls(quick=True, warmup=1, repeats=5, case_budget_s=0.8)
        return cls()


# ----------------------------------------------------------------------------- builders


def _first(out: Any) -> Tensor:
    """Modules that return (output, weights) → output."""
    return out[0] if isinstance(out, (tuple, list)) else out


ATTENTION_SHAPES = ((64, 200, 64, 2), (32, 512, 256, 8))  # (B, L, D, H) of issue 3


def _attention_built(impl: str, batch_size: int, length: int, d_model: int, heads: int) -> Built:
    """Self-attention forward + backward on (B, L, D) inputs; mtrec's block or torch's."""
    if impl == "mtrec":
        module = _import("mtrec.nn.attention").MultiHeadAttention(d_model, heads)
    else:
        module = nn.MultiheadAttention(d_model, heads, batch_first=True)
    g = torch.Generator().manual_seed(SEED)
    x = torch.randn(batch_size, length, d_model, generator=g)

    def forward(batch: Batch) -> Tensor:
        x = batch["x"]
        return _first(module(x, x, x) if impl == "mtrec" else module(x, x, x, need_weights=False))

    flops = transformer_flops(d_model=d_model, d_ff=0, src_len=length, enc_layers=1)
    return Built(
        module,
        {"x": x.requires_grad_(False)},
        flops_per_sample=flops,
        loss=lambda b: forward(b).float().square().mean(),
        predict=forward,
        optimizer=False,
    )


# ----------------------------------------------------------------------------- comparisons


def _goal(
    goal: str,
    issue: int,
    device: torch.device,
    measured: float | None,
    target: float,
    detail: str,
    *,
    lower_is_better: bool = False,
) -> dict[str, Any]:
    if measured is None or not np.isfinite(measured):
        met = "not available"
    elif lower_is_better:
        met = "yes" if measured <= target else "no"
    else:
        met = "yes" if measured >= target else "no"
    return {
        "goal": goal,
        "issue": issue,
        "device": device.type,
        "measured": float("nan") if measured is None else round(float(measured), 3),
        "target": f"{'<=' if lower_is_better else '>='} {target:g}",
        "met": met,
        "detail": detail,
    }


def _unavailable_goal(
    goal: str,
    issue: int,
    device: torch.device,
    err: Exception,
    target: float,
    *,
    lower_is_better: bool = False,
) -> dict:
    log.warning("%s: not available (%s)", goal, err)
    return _goal(
        goal, issue, device, None, target, f"not available: {err}", lower_is_better=lower_is_better
    )


def compare_attention(
    device: torch.device, env: dict, settings: Settings, ceiling: float | None
) -> tuple[list, list]:
    """mtrec MultiHeadAttention vs torch.nn.MultiheadAttention, fwd+bwd, issue 3's two shapes."""
    rows, goals = [], []
    for batch, length, d_model, heads in ATTENTION_SHAPES:
        goal = f"MultiHeadAttention / torch MHA, B={batch} L={length} D={d_model} H={heads}"
        names = {
            impl: f"attention-{impl} L{length} D{d_model} H{heads}" for impl in ("mtrec", "torch")
        }
        try:
            new = compare_builds(
                {
                    names[impl]: functools.partial(
                        _attention_built, impl, batch, length, d_model, heads
                    )
                    for impl in ("mtrec", "torch")
                },
                phase="train",
                batch_size=batch,
                device=device,
                env=env,
                ceiling=ceiling,
                settings=settings,
            )
        except Unavailable as err:
            goals.append(_unavailable_goal(goal, 3, device, err, 1.0))
            continue
        rows += new.values()
        ours, theirs = (new[names[i]]["samples_per_s"] for i in ("mtrec", "torch"))
        goals.append(
            _goal(
                goal, 3, device, ours / theirs, 1.0, f"fwd+bwd samples/s {ours:.1f} vs {theirs:.1f}"
            )
        )
    goals.append(fused_attention_goal(device))
    return rows, goals


FUSED_ATTENTION_OPS = ("flash_attention", "efficient_attention", "cudnn_attention")


def fused_attention_kernels(device: torch.device) -> list[str]:
    """The fused scaled-dot-product kernels mtrec's MultiHeadAttention dispatches to (profiled,
    B=32 L=512 D=256 H=8, bf16 autocast on CUDA, fp32 on CPU)."""
    from torch.profiler import ProfilerActivity, profile

    built = _attention_built("mtrec", 8, 512, 256, 8)
    built.model.to(device)
    batch = _move(built.batch, device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    with profile(activities=[ProfilerActivity.CPU]) as prof, torch.inference_mode():
        with torch.autocast(device.type, dtype=dtype, enabled=device.type == "cuda"):
            built.predict(batch)
        synchronize(device)
    names = {e.key for e in prof.key_averages()}
    return sorted(n for n in names if any(op in n for op in FUSED_ATTENTION_OPS))


def fused_attention_goal(device: torch.device) -> dict[str, Any]:
    """Issue 3: on GPU the fast path dispatches to a fused (flash / memory-efficient) kernel
    (recorded on CPU too, where PyTorch has a fused flash kernel of its own)."""
    kernels = fused_attention_kernels(device)
    return _goal(
        "MultiHeadAttention dispatches to a fused kernel (bf16)",
        3,
        device,
        float(bool(kernels)),
        1.0,
        ", ".join(kernels) or "no fused kernel seen",
    )


MULTITASK_BATCH = 2048  # issue 5: batch 2048, 8 experts, embedding 16, two towers
MULTITASK_EXPERTS = 8
EXPERT_HIDDEN = (64, 32)
TOWER_HIDDEN = (16,)


def compare_multitask(
    kind: str, device: torch.device, env: dict, settings: Settings
) -> tuple[list, list]:
    """Train samples/s of mtrec's MMoE/PLE vs the loop version with a per-sample DataLoader."""
    goal = f"{kind.upper()} train / typical implementation, batch {MULTITASK_BATCH}"
    try:
        model = multitask_model(kind, click_features())
    except Unavailable as err:
        return [], [_unavailable_goal(goal, 5, device, err, 2.0)]
    features = click_features()
    naive = naive_multitask_model(kind, features)
    n_rows = MULTITASK_BATCH * (4 if settings.quick else 8)
    data = synthetic_batch(features, n_rows, num_tasks=2)
    from mtrec.data import TensorBatcher

    batches = TensorBatcher(_move(data, device), MULTITASK_BATCH, shuffle=True, seed=SEED)
    loader = torch.utils.data.DataLoader(
        PerSampleDataset(data), batch_size=MULTITASK_BATCH, shuffle=True
    )
    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    naive_opt = torch.optim.Adam(naive.parameters(), lr=1e-3)
    naive.to(device)
    epochs = {
        f"{kind} (epoch, data incl.)": lambda: mtrec_train_epoch(model, batches, opt),
        f"{kind}-typical-loop (epoch, data incl.)": lambda: naive_train_epoch(
            naive, _moving(loader, device), naive_opt
        ),
    }
    timings = time_interleaved(
        epochs,
        device=device,
        batch_size=n_rows,
        warmup=1,
        repeats=5 if settings.quick else 9,
        min_repeats=2,
        budget_s=8.0 if settings.quick else 30.0,
    )
    rows, rates = [], []
    for name, epoch in timings.items():
        per_batch = Timing(
            [t * MULTITASK_BATCH / n_rows for t in epoch.times_ms],
            epoch.peak_mem_mb,
            MULTITASK_BATCH,
        )
        rows.append(
            _row(
                env,
                model=name,
                precision="fp32",
                batch_size=MULTITASK_BATCH,
                phase="train",
                timing=per_batch,
            )
        )
        rates.append(epoch.samples_per_s)
    ours, theirs = rates
    detail = (
        f"train samples/s {ours:.0f} vs {theirs:.0f} (epochs of {n_rows} rows, data loading incl.)"
    )
    return rows, [_goal(goal, 5, device, ours / theirs, 2.0, detail)]


def _moving(loader: Any, device: torch.device) -> Iterator[Batch]:
    for batch in loader:
        yield _move(batch, device)


STAR_SCENARIOS = (2, 8, 32, 128)
STAR_BATCH = 1024
ROUTING_TARGET = 2.5  # fwd+bwd time S=128 / S=2 (linear growth: 64)


def _router_and_batch(batch_size: int, num_scenarios: int) -> tuple[nn.Module, Batch]:
    """A ScenarioRouter (130 → 64 → 32 → T per scenario) and a seeded (B, 130) batch."""
    router = _import("mtrec.nn.scenario").ScenarioRouter(num_scenarios, 130, (64, 32), len(TASKS))
    g = torch.Generator().manual_seed(SEED)
    batch = {
        "x": torch.randn(batch_size, 130, generator=g),
        "scenario_ids": torch.randint(0, num_scenarios, (batch_size,), generator=g),
    }
    return router, batch


def router_built(batch_size: int, *, num_scenarios: int) -> Built:
    """mtrec.routing.ScenarioRouter (one MLP per scenario, gathered) on (B, 130) inputs."""
    router, batch = _router_and_batch(batch_size, num_scenarios)

    def forward(b: Batch) -> Tensor:
        return router(b["x"], b["scenario_ids"])

    return Built(router, batch, loss=lambda b: forward(b).square().mean(), predict=forward)


def every_tower_built(batch_size: int, *, num_scenarios: int) -> Built:
    """The anti-pattern, for reference: every row through every scenario's MLP, then pick.

    The same weights as :func:`router_built`, applied to all rows for all S scenarios (one
    einsum per layer, (B, S, D)), then each row keeps its own scenario's output: S× the work.
    """
    router, batch = _router_and_batch(batch_size, num_scenarios)

    def forward(b: Batch) -> Tensor:
        h = b["x"].unsqueeze(1).expand(-1, num_scenarios, -1)  # (B, S, D_in)
        last = len(router.weights) - 1
        for i, (w, bias) in enumerate(zip(router.weights, router.biases)):
            h = torch.einsum("bsi,sio->bso", h, w) + bias  # (B, S, D_out): all towers
            h = torch.relu(h) if i < last else h
        rows = torch.arange(len(h), device=h.device)
        return h[rows, b["scenario_ids"]]  # (B, D_out): keep the row's own scenario

    return Built(router, batch, loss=lambda b: forward(b).square().mean(), predict=forward)


def star_scenario_cost(
    device: torch.device, env: dict, settings: Settings, ceiling: float | None
) -> tuple[list, list]:
    """The routing cost as the number of scenarios S grows (batch 1024), for STAR and the
    ScenarioRouter, next to the every-row-through-every-tower anti-pattern.

    Goal (issue 5: "flat, not linear"): forward + backward time at S=128 over S=2 <= 2.5, where
    linear growth would be 64x (the every-tower reference is measured beside it). Rows are
    grouped by scenario, so the per-row work does not grow with S; what does grow is the
    parameter count: at S=128 a 1024-row batch holds every scenario, so all S weight matrices
    are read, differentiated (and for STAR multiplied, W * W_s) and, in a full train step,
    updated by Adam. Those train-step times are reported in the detail.
    """
    counts = STAR_SCENARIOS[::3] if settings.quick else STAR_SCENARIOS
    lo, hi = min(counts), max(counts)
    rows, goals = [], []

    def time_all(build: Callable[..., Built], label: str, *, optimizer: bool, which=counts):
        def built(s: int) -> Built:
            return replace(build(STAR_BATCH, num_scenarios=s), optimizer=optimizer)

        new = compare_builds(
            {f"{label} S={s}": functools.partial(built, s) for s in which},
            phase="train",
            batch_size=STAR_BATCH,
            device=device,
            env=env,
            ceiling=ceiling,
            settings=settings,
        )
        rows.extend(new.values())
        return {s: new[f"{label} S={s}"]["ms_p50"] for s in which}

    for name, build in (("star", star_built), ("router", router_built)):
        goal = f"{'STAR' if name == 'star' else 'ScenarioRouter'} fwd+bwd time, S={hi} / S={lo}"
        try:
            routed = time_all(build, f"{name} fwd+bwd", optimizer=False)
            step = time_all(build, name, optimizer=True)
            reference = ""
            if name == "router":
                every = time_all(every_tower_built, "every-tower fwd+bwd", optimizer=False,
                                 which=(lo, hi))  # fmt: skip
                reference = (
                    f"; every row through every tower: S={lo}: {every[lo]:.1f} ms, "
                    f"S={hi}: {every[hi]:.1f} ms (x{every[hi] / every[lo]:.1f})"
                )
        except Unavailable as err:
            goals.append(
                _unavailable_goal(goal, 5, device, err, ROUTING_TARGET, lower_is_better=True)
            )
            continue
        detail = (
            "fwd+bwd "
            + ", ".join(f"S={s}: {t:.1f} ms" for s, t in routed.items())
            + f"; train step with Adam S={lo}: {step[lo]:.1f} ms, S={hi}: {step[hi]:.1f} ms "
            f"(x{step[hi] / step[lo]:.2f}: Adam's work grows with the S-fold parameters)"
            + reference
        )
        goals.append(
            _goal(
                goal,
                5,
                device,
                routed[hi] / routed[lo],
                ROUTING_TARGET,
                detail,
                lower_is_better=True,
            )
        )
    return rows, goals


def _review_texts(count: int) -> list[str]:
    """``count`` real review texts (Women's Clothing reviews) when cached, else fixed sentences."""
    try:
        from mtrec.data import load_clothing

        texts = load_clothing().text
        texts = texts[texts.str.len() > 0].sample(count, random_state=SEED)
        return texts.tolist()
    except Exception as err:  # dataset not fetched on this machine: still real-looking sentences
        log.warning("clothing reviews unavailable (%s); timing fixed review-like sentences", err)
        words = (
            "soft fabric runs small lovely colour fits well returned it too long great "
            "quality the dress was perfect for summer but the zipper broke after"
        ).split()
        rng = np.random.default_rng(SEED)
        return [" ".join(rng.choice(words, size=rng.integers(10, 60))) for _ in range(count)]


TEXT_BATCH = 64
TEXT_MAX_LENGTH = 128  # tokens; TextEncoder's default (review texts are mostly shorter)


def compare_text(device: torch.device, env: dict, settings: Settings) -> tuple[list, list]:
    """TextEncoder vs SentenceTransformer.encode (batch 64), and the cache's re-encode speed-up."""
    goal_speed, goal_cache = (
        "TextEncoder / SentenceTransformer, batch 64",
        "TextEncoder cache speed-up",
    )
    try:
        text_mod = _import("mtrec.extractors.text")
        from sentence_transformers import SentenceTransformer
    except (Unavailable, ImportError) as err:
        return [], [
            _unavailable_goal(goal_speed, 4, device, err, 1.0),
            _unavailable_goal(goal_cache, 4, device, err, 50.0),
        ]
    texts = _review_texts(TEXT_BATCH)
    path = text_mod.default_model_path()
    st = SentenceTransformer(path, device=str(device))
    st.max_seq_length = TEXT_MAX_LENGTH  # the same truncation on both sides
    repeats = 2 if settings.quick else 5
    rows, rates = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        encoder = text_mod.TextEncoder(
            path, device=device, cache_dir=tmp, batch_size=TEXT_BATCH, max_length=TEXT_MAX_LENGTH
        )

        def ours_first() -> None:
            encoder.clear_cache()
            encoder.encode(texts, progress=False)

        steps = {
            "text-encoder-mtrec": ours_first,
            "sentence-transformers": lambda: st.encode(
                texts, batch_size=TEXT_BATCH, convert_to_tensor=True, show_progress_bar=False
            ),
        }
        timings = {}
        for name, step in steps.items():
            timings[name] = time_steps(
                step,
                device=device,
                batch_size=TEXT_BATCH,
                warmup=1,
                repeats=repeats,
                min_repeats=2,
                budget_s=8.0,
            )
        encoder.encode(texts, progress=False)  # fill the cache
        timings["text-encoder-mtrec cached"] = time_steps(
            lambda: encoder.encode(texts, progress=False),
            device=device,
            batch_size=TEXT_BATCH,
            warmup=2,
            repeats=20,
        )
    for name, timing in timings.items():
        rates[name] = timing.samples_per_s
        rows.append(
            _row(
                env,
                model=name,
                precision="fp32",
                batch_size=TEXT_BATCH,
                phase="inference",
                timing=timing,
            )
        )
    ours, theirs = rates["text-encoder-mtrec"], rates["sentence-transformers"]
    cached = rates["text-encoder-mtrec cached"]
    return rows, [
        _goal(
            goal_speed,
            4,
            device,
            ours / theirs,
            1.0,
            f"sentences/s {ours:.0f} vs {theirs:.0f} (real review texts)",
        ),
        _goal(
            goal_cache,
            4,
            device,
            cached / ours,
            50.0,
            f"cached {cached:.0f} vs first pass {ours:.0f} sentences/s",
        ),
    ]


DISTILL_BATCH = 1024


def compare_distill(
    device: torch.device, env: dict, settings: Settings, ceiling: float | None
) -> tuple[list, list]:
    """Inference samples/s of the distilled student vs its teacher at batch 1024."""
    goal = f"distilled student / teacher inference, batch {DISTILL_BATCH}"
    try:
        new = compare_builds(
            {
                case.name: (lambda c=case: c.build(DISTILL_BATCH))
                for case in (student_case(), teacher_case())
            },
            phase="inference",
            batch_size=DISTILL_BATCH,
            device=device,
            env=env,
            ceiling=ceiling,
            settings=settings,
        )
    except Unavailable as err:
        return [], [_unavailable_goal(goal, 7, device, err, 10.0)]
    student, teacher = (new[n]["samples_per_s"] for n in ("distilled-student", "distill-teacher"))
    return list(new.values()), [
        _goal(goal, 7, device, student / teacher, 10.0, f"samples/s {student:.0f} vs {teacher:.0f}")
    ]


# ----------------------------------------------------------------------------- the command

GROUPS = ("attention", "encoder_decoder", "sasrec", "mmoe", "ple", "star", "distill", "text")


def model_cases() -> dict[str, list[Case]]:
    """Benchmarked models by group (each builder imports its module lazily)."""
    return {
        "attention": [],  # measured as the side-by-side comparison of issue 3
        "encoder_decoder": [encoder_decoder_case()],
        "sasrec": [sasrec_case()],
        "mmoe": [multitask_case("mmoe")],
        "ple": [multitask_case("ple")],
        "star": [star_case()],
        "distill": [student_case(), teacher_case()],
        "text": [],  # TextEncoder: the comparison of issue 4
    }


def case_batch_sizes(case: Case, device: torch.device, *, quick: bool) -> tuple[int, ...]:
    """A GPU gets the large batches even in ``--quick`` (it is fast); a CPU gets fewer when quick."""
    if device.type == "cuda":
        return case.cuda_batch_sizes or case.batch_sizes
    return case.quick_batch_sizes if quick else case.batch_sizes


def _precisions(device: torch.device) -> tuple[str, ...]:
    return ("fp32", "bf16") if device.type == "cuda" else ("fp32",)


def measure_device(
    device: torch.device,
    groups: Sequence[str],
    settings: Settings,
    *,
    batch_sizes: Sequence[int] | None = None,
    compile_too: bool = False,
    note: str = "",
) -> tuple[list, list, list]:
    """Everything for one device: ceilings, model rows, comparisons. (rows, goals, unavailable)."""
    env = _environment(device, note)
    rows, goals, unavailable = [], [], []
    matmul, copy = (
        matmul_ceiling(device, quick=settings.quick),
        copy_ceiling(device, quick=settings.quick),
    )
    ceiling = matmul["gflops_per_s"]
    for c in (matmul, copy):
        rows.append(
            _row(
                env,
                model=c["model"],
                precision=c["precision"],
                batch_size=c["batch_size"],
                phase="ceiling",
                timing=c["timing"],
                gflops=c.get("gflops_per_s"),
                ceiling=ceiling,
            )
        )
    log.info("%s ceilings: matmul %.1f GFLOP/s, copy %.1f GB/s", device, ceiling, copy["gb_per_s"])
    cases = model_cases()
    for group in groups:
        for case in cases[group]:
            sizes = batch_sizes or case_batch_sizes(case, device, quick=settings.quick)
            try:
                for precision in _precisions(device):
                    rows += measure_case(
                        case,
                        device=device,
                        precision=precision,
                        batch_sizes=sizes,
                        env=env,
                        ceiling=ceiling,
                        settings=settings,
                    )
                if compile_too:
                    rows += measure_case(
                        case,
                        device=device,
                        precision="fp32",
                        batch_sizes=sizes,
                        env=env,
                        ceiling=ceiling,
                        settings=settings,
                        compiled=True,
                    )
            except Unavailable as err:
                log.warning("%s: not available (%s)", case.name, err)
                unavailable.append({"model": case.name, "device": device.type, "reason": str(err)})
    comparisons: dict[str, Callable[[], tuple[list, list]]] = {
        "attention": lambda: compare_attention(device, env, settings, ceiling),
        "mmoe": lambda: compare_multitask("mmoe", device, env, settings),
        "ple": lambda: compare_multitask("ple", device, env, settings),
        "star": lambda: star_scenario_cost(device, env, settings, ceiling),
        "text": lambda: compare_text(device, env, settings),
        "distill": lambda: compare_distill(device, env, settings, ceiling),
    }
    for group in groups:
        if group in comparisons:
            new_rows, new_goals = comparisons[group]()
            rows += new_rows
            goals += new_goals
    goals += ceiling_goals(rows, device)
    for goal in goals:
        goal.update(commit=env["commit"], date=env["date"])
    return rows, goals, unavailable


FLOP_MODELS = (
    "encoder-decoder",
    "sasrec",
    "mmoe",
    "ple",
    "star",
    "distilled-student",
    "distill-teacher",
)  # the models whose train step issue 8 compares with the ceiling


def ceiling_goals(rows: list[dict[str, Any]], device: torch.device) -> list[dict[str, Any]]:
    """Issue 8's goals: the best train step's fraction of the measured matmul ceiling.

    On GPU the encoder-decoder should reach 40% of the bf16 ceiling; on CPU each model should be
    within 2× (50%) of what its FLOPs and the ceiling allow, or notebook 10 explains why not.
    """
    frame = pd.DataFrame(rows)
    if frame.empty:
        return []
    train = frame[(frame.phase == "train") & frame.ceiling_fraction.notna() & ~frame.compiled]
    goals = []
    if device.type == "cuda":
        part = train[(train.model == "encoder-decoder") & (train.precision == "bf16")]
        best = part.ceiling_fraction.max() if len(part) else None
        batch = int(part.loc[part.ceiling_fraction.idxmax()].batch_size) if len(part) else 0
        goals.append(
            _goal(
                "encoder-decoder train / bf16 matmul ceiling",
                8,
                device,
                best,
                0.4,
                f"best batch {batch}" if batch else "encoder-decoder not measured",
            )
        )
        return goals
    for model in FLOP_MODELS:
        part = train[train.model == model]
        if part.empty:
            continue
        best = part.loc[part.ceiling_fraction.idxmax()]
        goals.append(
            _goal(
                f"{model} CPU train / FLOP bound",
                8,
                device,
                best.ceiling_fraction,
                0.5,
                f"{best.gflops_per_s:.1f} GFLOP/s at batch {int(best.batch_size)}; "
                "notebook 10 explains a miss",
            )
        )
    return goals


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``mtrec bench`` (called by :mod:`mtrec.cli` when it builds its parser)."""
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer repeats and batch sizes: under 2 minutes on a 2-core CPU",
    )
    parser.add_argument(
        "--models",
        nargs="+",
        choices=GROUPS,
        default=list(GROUPS),
        metavar="GROUP",
        help=f"model groups to run (default: all of {GROUPS})",
    )
    parser.add_argument(
        "--devices",
        nargs="+",
        default=None,
        help="devices to measure (default: cpu, and cuda when present)",
    )
    parser.add_argument(
        "--batch-sizes",
        nargs="+",
        type=int,
        default=None,
        help="override every model's batch sizes",
    )
    parser.add_argument("--compile", action="store_true", help="also time torch.compile-d models")
    parser.add_argument(
        "--out",
        type=str,
        default=None,
        help="results directory (default: benchmarks/results); the report is written next to it",
    )
    parser.add_argument(
        "--note",
        type=str,
        default="",
        help="appended to device_name, e.g. 'shared, loaded 2-core machine'",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch intra-op CPU threads (default: torch's choice); on a shared, oversubscribed "
        "machine 1 thread avoids waiting at every parallel region for a descheduled thread",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="regenerate tables and plots from the CSVs, measure nothing",
    )
    parser.add_argument("--no-report", action="store_true", help="measure, skip the report")


def _paths(out: str | None) -> tuple[Any, Any, Any]:
    from pathlib import Path

    results_dir = Path(out) if out else REPO_ROOT / "benchmarks" / "results"
    return results_dir, results_dir / "throughput.csv", results_dir / "goals.csv"


def write_goals(goals: list[dict], path: Any) -> pd.DataFrame:
    """Upsert goal rows (keyed by goal and device) into ``goals.csv``."""
    from mtrec.results import upsert

    frame = pd.DataFrame(goals, columns=GOAL_COLUMNS)
    return upsert(path, frame, GOAL_COLUMNS, ["goal", "device"])


def run(args: argparse.Namespace) -> int:
    """Execute ``mtrec bench``; returns the process exit code."""
    from mtrec import report
    from mtrec.results import THROUGHPUT_KEY, markdown_table, record_throughput

    results_dir, throughput_csv, goals_csv = _paths(args.out)
    if args.report_only:
        report.render(results_dir=results_dir)
        print(f"report regenerated from {results_dir}")
        return 0
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING)
    settings = Settings.from_quick(args.quick)
    if args.threads:
        torch.set_num_threads(args.threads)
    names = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    started = time.perf_counter()
    all_goals, all_unavailable = [], []
    for name in names:
        device = get_device(name)
        rows, goals, unavailable = measure_device(
            device,
            args.models,
            settings,
            batch_sizes=args.batch_sizes,
            compile_too=args.compile,
            note=args.note,
        )
        if rows:  # a comparison re-times some model rows: keep its (interleaved) measurement
            frame = pd.DataFrame(rows).drop_duplicates(THROUGHPUT_KEY, keep="last")
            record_throughput(frame, path=throughput_csv)
        all_goals += goals
        all_unavailable += unavailable
    if not torch.cuda.is_available():
        print("cuda: not measured (torch.cuda.is_available() is False on this machine)")
    if all_goals:
        write_goals(all_goals, goals_csv)
        shown = pd.DataFrame(all_goals)[["goal", "device", "measured", "target", "met", "detail"]]
        print(markdown_table(shown))
    for item in all_unavailable:
        print(f"{item['model']} on {item['device']}: not available ({item['reason']})")
    print(f"measured in {time.perf_counter() - started:.0f} s; rows in {throughput_csv}")
    if not args.no_report:
        report.render(results_dir=results_dir)
    return 0


# ----------------------------------------------------------------------------- model builders


TASKS = ("click", "like")


PLE_SPECIFIC, PLE_SHARED = 3, 2  # per level: T·K_s + K_sh = 2·3 + 2 = 8 experts


def multitask_model(kind: str, features: Sequence[Any]) -> nn.Module:
    """mtrec's MMoE or PLE in issue 5's configuration: 8 experts, two task towers."""
    module = _import(f"mtrec.models.{kind}")
    if kind == "mmoe":
        config = module.MMoEConfig(
            features=tuple(features),
            num_tasks=len(TASKS),
            num_experts=MULTITASK_EXPERTS,
            expert_hidden=EXPERT_HIDDEN,
            tower_hidden=TOWER_HIDDEN,
        )
        return module.MMoE(config)
    config = module.PLEConfig(
        features=tuple(features),
        num_tasks=len(TASKS),
        num_levels=2,
        num_specific=PLE_SPECIFIC,
        num_shared=PLE_SHARED,
        expert_hidden=EXPERT_HIDDEN,
        tower_hidden=TOWER_HIDDEN,
    )
    return module.PLE(config)


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
    def build(batch_size: int) -> Built:
        features = click_features()
        model = multitask_model(kind, features)
        return Built(model, synthetic_batch(features, batch_size, num_tasks=len(TASKS)))

    return Case(kind, build, (1, 64, 1024, 4096), (1, 64, 1024), (1, 64, 1024, 4096, 16384), 5)


def star_built(batch_size: int, *, num_scenarios: int = 8) -> Built:
    """STAR on the click schema with ``num_scenarios`` scenarios; batch adds ``scenario_ids``."""
    module = _import("mtrec.models.scenario.star")
    features = click_features()
    config = module.STARConfig(
        features=tuple(features), num_scenarios=num_scenarios, num_tasks=len(TASKS)
    )
    batch = synthetic_batch(features, batch_size, num_tasks=len(TASKS))
    g = torch.Generator().manual_seed(SEED + 1)
    batch["scenario_ids"] = torch.randint(0, num_scenarios, (batch_size,), generator=g)
    return Built(module.STAR(config), batch)


def star_case() -> Case:
    sizes = (1, 64, 1024, 4096)
    return Case("star", star_built, sizes, (1, 64, 1024), sizes, issue=5, train_min_batch=2)


def _distill_pair_case(role: str) -> Case:
    """Issue 7's teacher (LM-feature MMoE) or student (ID-only MLP) from ``distill.benchmark_pair``."""

    def build(batch_size: int) -> Built:
        teacher, student, example_batch = _import("mtrec.distill").benchmark_pair()
        return Built(student if role == "student" else teacher, example_batch(batch_size))

    name = "distilled-student" if role == "student" else "distill-teacher"
    return Case(name, build, (1, 64, 1024, 4096), (1, 1024), issue=7)


def student_case() -> Case:
    """The distilled student of issue 7: an ID-only MLP (16-d ids, one hidden layer of 32)."""
    return _distill_pair_case("student")


def teacher_case() -> Case:
    """The teacher of issue 7: an MMoE (8 experts (512, 256)) over ids and a 384-d text vector."""
    return _distill_pair_case("teacher")


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
    """The Transformer encoder-decoder of issue 3 (teacher-forced next-items), 2+2 layers, D=256."""

    def build(batch_size: int) -> Built:
        module = _import("mtrec.nn.encoder_decoder")
        config = module.EncoderDecoderConfig(**ENCDEC)
        model = module.EncoderDecoder(config)
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

    return Case("encoder-decoder", build, (1, 64, 256), (1, 64), (1, 64, 256, 1024, 4096), 3)


SASREC = dict(num_items=1682, max_len=50, d_model=64, num_heads=1, num_layers=2, d_ff=64)


def sasrec_case() -> Case:
    """SASRec of issue 3 at ML-100k size (1682 items, L=50, D=64, full-softmax loss)."""

    def build(batch_size: int) -> Built:
        module = _import("mtrec.models.sequential.sasrec")
        config = module.SASRecConfig(**SASREC)
        g = torch.Generator().manual_seed(SEED)
        # full-length histories: every position has a target, so the FLOP count is exact
        items = torch.randint(
            1, config.num_items + 1, (batch_size, config.max_len + 1), generator=g
        )
        batch = {"item_ids": items[:, :-1], "targets": items[:, 1:]}
        model = module.SASRec(config)
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
            predict=lambda b: model.score(b["item_ids"]),
        )

    return Case("sasrec", build, (1, 64, 256, 1024), (1, 64, 256), (1, 64, 1024, 4096), 3)
