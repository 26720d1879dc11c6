"""``torch.compile`` against eager, measured both ways in one run: the ``--compile`` comparison.

A compiled train step and the eager one of the same model are timed in alternation (A B A B,
:func:`mtrec.bench.measure.compare_builds`), so that the ratio is free of the load and the drift
between two runs; each pair ends in a goal row "does compiling pay off?" (compiled / eager
samples/s ≥ 1) and the compiled step's throughput row. The eager rows of the table stay the ones
of the main run (:func:`mtrec.bench.measure.measure_case`): the eager side of each ratio is in
the goal's detail.

Compiling costs tens of seconds per model and batch size (Inductor generates and builds C++ on
the warm-up steps), so ``mtrec bench`` runs it only when asked (``--compile``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from typing import Any

from mtrec.bench.built import Case
from mtrec.bench.cases import model_cases
from mtrec.bench.goals import compare_goal
from mtrec.bench.measure import Context

COMPILE_BATCHES = (1024, 4096)  # the batches of the FLOP-bound goals, where fusion could pay
COMPILED_SUFFIX = " (torch.compile)"  # the compiled build's name while both are timed

log = logging.getLogger(__name__)


def compile_goal(case: Case, batch_size: int, ctx: Context) -> tuple[dict, dict[str, Any]]:
    """``case``'s train step compiled and eager, in alternation at ``batch_size``.

    Returns:
        (the compiled step's throughput row, named ``case.name`` with ``compiled`` True; the
        goal row: compiled / eager samples/s ≥ 1).
    """
    compiled = case.name + COMPILED_SUFFIX
    build = functools.partial(case.build, batch_size)
    rows, goal = compare_goal(
        f"{case.name} train: torch.compile / eager, batch {batch_size}",
        "compile",
        {case.name: build, compiled: build},
        ours=compiled,
        theirs=case.name,
        target=1.0,
        detail="samples/s {ours:.0f} compiled vs {theirs:.0f} eager, timed in alternation",
        phase="train",
        batch_size=batch_size,
        ctx=ctx,
        compiled=(compiled,),
    )
    row = next(r for r in rows if r["model"] == compiled)
    return {**row, "model": case.name}, goal


def compile_speedups(
    ctx: Context, groups: Sequence[str], batch_sizes: Sequence[int] | None = None
) -> tuple[list[dict], list[dict[str, Any]]]:
    """:func:`compile_goal` for every model of ``groups`` at ``batch_sizes`` (default
    :data:`COMPILE_BATCHES`; sizes below a model's smallest trainable batch are skipped).

    Returns:
        (compiled throughput rows, goal rows).
    """
    rows, goals = [], []
    cases = model_cases()
    for group in groups:
        for case in cases[group]:
            for batch_size in batch_sizes or COMPILE_BATCHES:
                if batch_size < case.train_min_batch:
                    continue
                row, goal = compile_goal(case, batch_size, ctx)
                log.info("%s: %s", goal["goal"], goal["detail"])
                rows.append(row)
                goals.append(goal)
    return rows, goals
