"""``mtrec bench``: its options, and the run over devices, models and comparisons.

Measures every device asked for (CPU, and CUDA when present): the ceilings, each model group's
cases over their batch sizes, phases and precisions, and its side-by-side comparisons; writes
``benchmarks/results/throughput.csv`` and ``goals.csv`` (``--out`` elsewhere) and regenerates the
report from them (``--report-only`` regenerates without measuring).
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch

from mtrec.bench.built import Case, Unavailable
from mtrec.bench.cases import GROUPS, MODEL_NAMES, model_cases
from mtrec.bench.compare import COMPARISONS
from mtrec.bench.compile_speed import compile_speedups
from mtrec.bench.flops import copy_ceiling, matmul_ceiling
from mtrec.bench.goals import ceiling_goals, scenario_routing_cost
from mtrec.bench.measure import Context, environment, measure_case, row
from mtrec.bench.timing import Settings
from mtrec.checks import arg_int, arg_path
from mtrec.reporting import (
    RESULTS_DIR,
    THROUGHPUT_KEY,
    load_goals,
    load_throughput,
    markdown_table,
    record_goals,
    record_throughput,
    write_report,
)
from mtrec.utils import get_device

log = logging.getLogger(__name__)


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
    compile_only: bool = False,
    note: str = "",
) -> tuple[list, list, list]:
    """Everything for one device: ceilings, model rows, comparisons. (rows, goals, unavailable).

    ``compile_only``: only each model's train step compiled against eager, timed in alternation
    (:func:`mtrec.bench.compile_speed.compile_speedups`), nothing else.
    """
    env = environment(device, note)
    if compile_only:
        rows, goals = compile_speedups(Context(device, env, settings, None), groups, batch_sizes)
        for goal in goals:
            goal.update(commit=env["commit"], date=env["date"])
        return rows, goals, []
    rows, goals, unavailable = [], [], []
    matmul, copy = (
        matmul_ceiling(device, quick=settings.quick),
        copy_ceiling(device, quick=settings.quick),
    )
    ceiling = matmul["gflops_per_s"]
    for c in (matmul, copy):
        rows.append(
            row(
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
            except Unavailable as err:
                log.warning("%s: not available (%s)", case.name, err)
                unavailable.append({"model": case.name, "device": device.type, "reason": str(err)})
    ctx = Context(device, env, settings, ceiling)
    comparisons = {**COMPARISONS, "scenario": scenario_routing_cost}
    for group in groups:
        if group in comparisons:
            new_rows, new_goals = comparisons[group](ctx)
            rows += new_rows
            goals += new_goals
    goals += ceiling_goals(rows, ctx)
    for goal in goals:
        goal.update(commit=env["commit"], date=env["date"])
    return rows, goals, unavailable


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
        type=arg_int(min=1),
        default=None,
        help="override every model's batch sizes",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="measure only torch.compile against eager: each model's train step both ways, "
        "timed in alternation at batch 1024 and 4096 (or --batch-sizes); tens of seconds of "
        "compiling per model and batch",
    )
    parser.add_argument(
        "--out",
        type=arg_path,
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
        "--relabel",
        action="store_true",
        help="the rows written (measured, or merged with --merge) replace this machine's rows of "
        "the same measurements under any other --note, instead of standing beside them",
    )
    parser.add_argument(
        "--threads",
        type=arg_int(min=1, max=1024),
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
    parser.add_argument(
        "--merge",
        type=arg_path,
        default=None,
        metavar="DIR",
        help="measure nothing: upsert the throughput.csv / goals.csv rows of another run's --out "
        "DIR (e.g. the prepared GPU run, benchmarks/gpu/run.sh) into the results, then report",
    )


def merge_results(
    source: Path, throughput_csv: Path, goals_csv: Path, *, relabel: bool = False
) -> None:
    """Upsert the rows of another run's results folder (its throughput.csv and goals.csv).

    ``relabel``: its throughput rows also replace the same measurements of the same machine
    under another label (:func:`mtrec.reporting.record_throughput`).
    """
    found = [name for name in ("throughput.csv", "goals.csv") if (source / name).is_file()]
    if not found:
        raise SystemExit(
            f"--merge {source}: expected throughput.csv and/or goals.csv there, found neither; "
            "pass the results folder of a run made with --out"
        )
    if "throughput.csv" in found:
        rows = load_throughput(source / "throughput.csv")
        record_throughput(rows, path=throughput_csv, relabel=relabel)
    if "goals.csv" in found:
        record_goals(load_goals(source / "goals.csv").to_dict("records"), path=goals_csv)
    print(f"merged {', '.join(found)} from {source}")


def main(args: argparse.Namespace) -> int:
    """Execute ``mtrec bench``; returns the process exit code."""
    results_dir = Path(args.out) if args.out else RESULTS_DIR
    throughput_csv, goals_csv = results_dir / "throughput.csv", results_dir / "goals.csv"
    if args.merge:
        merge_results(Path(args.merge), throughput_csv, goals_csv, relabel=args.relabel)
    if args.report_only or args.merge:
        write_report(results_dir=results_dir, models=MODEL_NAMES)
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
            compile_only=args.compile,
            note=args.note,
        )
        if rows:  # a comparison re-times some model rows: keep its (interleaved) measurement
            frame = pd.DataFrame(rows).drop_duplicates(THROUGHPUT_KEY, keep="last")
            record_throughput(frame, path=throughput_csv, relabel=args.relabel)
        all_goals += goals
        all_unavailable += unavailable
    if not torch.cuda.is_available():
        print("cuda: not measured (torch.cuda.is_available() is False on this machine)")
    if all_goals:
        record_goals(all_goals, path=goals_csv)
        shown = pd.DataFrame(all_goals)[["goal", "device", "measured", "target", "met", "detail"]]
        print(markdown_table(shown))
    for item in all_unavailable:
        print(f"{item['model']} on {item['device']}: not available ({item['reason']})")
    print(f"measured in {time.perf_counter() - started:.0f} s; rows in {throughput_csv}")
    if not args.no_report:
        write_report(results_dir=results_dir, models=MODEL_NAMES)
    return 0
