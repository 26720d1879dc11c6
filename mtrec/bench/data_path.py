"""Does feeding SASRec cost more than training it? The sequence data path, timed beside a step.

SASRec trains on next-item windows (``SequenceData.train_windows``: one left-padded history of
L = 50 items and its shifted targets per row), served by a shuffling
:class:`mtrec.data.TensorBatcher` in batches of 64 (:data:`mtrec.experiments.sequential.BATCH_SIZE`).
Two epochs over the same rows are timed in alternation:

* ``batching`` — draw every batch (shuffled index, ``index_select`` of both tensors) and touch it;
* ``train`` — the same batches through ``loss → backward → Adam``.

Goal: batching / train <= :data:`DATA_SHARE_TARGET`: the data path must not be what a SASRec epoch
waits for.
"""

from __future__ import annotations

from typing import Any

import torch

from mtrec.bench.baselines import mtrec_train_epoch
from mtrec.bench.cases import SASREC
from mtrec.bench.goals import goal_row
from mtrec.bench.measure import Context
from mtrec.bench.timing import SEED, time_interleaved
from mtrec.data import TensorBatcher
from mtrec.models.sequential.sasrec import SASRec, SASRecConfig

DATA_SHARE_TARGET = 0.05  # batching may take at most 5% of a training epoch's time
SEQUENCE_BATCH = 64  # notebook 03's batch (mtrec.experiments.sequential.BATCH_SIZE)

Rows = list[dict[str, Any]]


def _draw_all(batches: TensorBatcher) -> int:
    """Every batch of one epoch, drawn and touched (its first id read), without a model."""
    rows = 0
    for batch in batches:
        rows += int(batch["item_ids"][0, -1] >= 0) * len(batch["item_ids"])
    return rows


def sequence_data_path(ctx: Context) -> tuple[Rows, Rows]:
    """Goal row: the share of a SASRec epoch spent drawing its batches."""
    device, quick = ctx.device, ctx.settings.quick
    rows = SEQUENCE_BATCH * (25 if quick else 100)
    config = SASRecConfig(**SASREC)
    g = torch.Generator().manual_seed(SEED)
    items = torch.randint(1, config.num_items + 1, (rows, config.max_len + 1), generator=g)
    windows = {"item_ids": items[:, :-1], "targets": items[:, 1:]}
    batches = TensorBatcher(windows, SEQUENCE_BATCH, shuffle=True, seed=SEED, device=device)
    model = SASRec(config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    timings = time_interleaved(
        {
            "batching": lambda: _draw_all(batches),
            "train": lambda: mtrec_train_epoch(model, batches, optimizer),
        },
        device=device,
        batch_size=rows,
        warmup=1,
        repeats=3 if quick else 5,
        min_repeats=2,
        budget_s=10.0 if quick else 30.0,
    )
    draw, train = timings["batching"].ms_p50, timings["train"].ms_p50
    detail = (
        f"epoch of {rows} windows (L={config.max_len}), batch {SEQUENCE_BATCH}: batching "
        f"{draw:.1f} ms, training {train:.0f} ms ({draw / (rows / SEQUENCE_BATCH):.3f} ms per batch)"
    )
    goal = f"SASRec epoch: batching / training time, batch {SEQUENCE_BATCH}"
    share = draw / train
    return [], [
        goal_row(goal, "data", device, share, DATA_SHARE_TARGET, detail, lower_is_better=True)
    ]
