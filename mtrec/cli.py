"""Command line: ``mtrec data list|fetch``, ``mtrec run``, ``mtrec bench``, ``mtrec tour``, ``mtrec export``,
``mtrec exercises list|release|grade``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from mtrec import bench
from mtrec.checks import arg_float, arg_int, arg_path
from mtrec.utils import REPO_ROOT


def _data_list(args: argparse.Namespace) -> int:
    """Print every dataset; "cached yes" means all its files are there with their fetched sizes."""
    from mtrec.data.registry import DATASETS, cache_dir, is_cached

    root = cache_dir()
    print(f"cache: {root}")
    if root.exists() and not root.is_dir():
        print(f"warning: {root} is a file, not a folder; point MTREC_DATA at a folder")
    print(f"{'name':22} {'rows':>7}  {'cached':6}  license")
    for name, entry in sorted(DATASETS.items()):
        cached = "yes" if is_cached(name) else "no"
        print(f"{name:22} {entry.rows:>7}  {cached:6}  {entry.license}")
    return 0


def _data_fetch(args: argparse.Namespace) -> int:
    from mtrec.data.fetching import fetch
    from mtrec.data.registry import DataError

    try:
        fetched = fetch(args.names, force=args.force)
    except DataError as err:
        print(f"mtrec data fetch: {err}", file=sys.stderr)
        return 1
    if fetched:
        print(f"fetched and verified: {', '.join(fetched)}")
    else:
        print("all requested datasets are cached and verified")
    return 0


def notebook_paths() -> list[Path]:
    """The numbered notebooks in order."""
    return sorted((REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _tour(args: argparse.Namespace) -> int:
    paths = notebook_paths()
    if args.list:
        for nb in paths:
            print(nb.relative_to(REPO_ROOT))
        return 0
    import nbformat
    from nbclient import NotebookClient

    os.environ.setdefault("MTREC_OFFLINE", "1")
    for nb_path in paths:
        start = time.perf_counter()
        notebook = nbformat.read(nb_path, as_version=4)
        NotebookClient(notebook, timeout=900, kernel_name="python3").execute(
            cwd=str(nb_path.parent)
        )
        nbformat.write(notebook, nb_path)
        print(f"{nb_path.name}: {time.perf_counter() - start:.1f} s")
    return 0


def _export(args: argparse.Namespace) -> int:
    import torch

    from mtrec.bench.cases import benchmark_pair
    from mtrec.serving.export import OnnxScorer, check_parity, export_onnx

    teacher, student, example_batch = benchmark_pair()
    names = {"student": student, "mmoe": teacher}
    out = Path(args.out)
    unknown = sorted(set(args.models) - set(names))
    if unknown:
        print(f"mtrec export: unknown models {unknown}; choose from {sorted(names)}",
              file=sys.stderr)  # fmt: skip
        return 2
    for name in args.models:
        model = names[name]
        if args.weights.get(name):
            from safetensors.torch import load_file

            model.load_state_dict(load_file(args.weights[name]))
        batch = example_batch(args.check_batch)
        path = export_onnx(model, out / f"{name}.onnx", example=batch, check=False)
        diff = check_parity(model, path, batch, atol=args.atol)
        probs = OnnxScorer(path).predict(batch)
        torch.testing.assert_close(probs, model.predict(batch), atol=args.atol, rtol=0)
        source = args.weights.get(name) or "untrained weights (pass --student/--mmoe FILE)"
        print(f"{name}: {path} (dynamic batch; {source}); onnxruntime vs torch max |Δlogit| "
              f"{diff:.1e} on batches of {args.check_batch} and {2 * args.check_batch}")  # fmt: skip
    return 0


def _exercises_list(args: argparse.Namespace) -> int:
    from mtrec.exercises.classroom import EXERCISES, FOLDER, title_of

    print(f"{'exercise':26} {'student writes':20} {'time':18} {'notebook':9} title")
    for exercise in EXERCISES:
        title, minutes = title_of(FOLDER / f"{exercise.stem}.ipynb")
        print(f"{exercise.stem:26} {exercise.function:20} {minutes:18} "
              f"{exercise.notebook:9} {title}")  # fmt: skip
    print(f"exercises: {FOLDER}; solutions: {FOLDER / 'solutions'}")
    return 0


def _exercises_release(args: argparse.Namespace) -> int:
    from mtrec.exercises.classroom import ClassroomError, release

    try:
        written = release(args.out, force=args.force)
    except ClassroomError as err:
        print(f"mtrec exercises release: {err}", file=sys.stderr)
        return 1
    print(f"released {len(written) - 1} exercise notebooks and README.md to {args.out} "
          "(outputs cleared; solutions not included)")  # fmt: skip
    return 0


def _exercises_grade(args: argparse.Namespace) -> int:
    from mtrec.exercises.classroom import ClassroomError
    from mtrec.exercises.grading import grade, write_csv

    def show(row) -> None:
        verdict = "passed" if row.passed else row.error or row.first_failure
        print(f"{row.student} {row.exercise}: {row.cases_passed}/{row.cases_total or '?'} cases, "
              f"{verdict[:120]} ({row.seconds:.1f} s)", flush=True)  # fmt: skip

    try:
        rows, skipped = grade(args.submissions, time_limit_s=args.timeout, jobs=args.jobs,
                              on_row=show)  # fmt: skip
    except ClassroomError as err:
        print(f"mtrec exercises grade: {err}", file=sys.stderr)
        return 1
    for reason in skipped:
        print(f"skipped {reason}", file=sys.stderr)
    write_csv(rows, args.out)
    students = len({row.student for row in rows})
    print(f"graded {len(rows)} notebooks of {students} students "
          f"({sum(row.passed for row in rows)} passed) -> {args.out}")  # fmt: skip
    return 0


EXPERIMENTS = (
    "transfer",
    "kg",
    "multiscenario",
    "multitask",
    "llm",
    "tuning",
    "sequential",
    "generative",
    "allocation",
    "text_tuning",
)


def _run(args: argparse.Namespace) -> int:
    """``mtrec run NAME [options]``: the same as ``python -m mtrec.experiments.NAME [options]``."""
    import importlib

    module = importlib.import_module(f"mtrec.experiments.{args.experiment}")
    module.main(args.options)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mtrec", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="list or fetch the public datasets")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    data_sub.add_parser("list", help="name, rows, license and whether cached").set_defaults(
        func=_data_list
    )
    fetch = data_sub.add_parser("fetch", help="download, verify and cache datasets")
    fetch.add_argument("names", nargs="*", help="datasets to fetch (default: all)")
    fetch.add_argument("--force", action="store_true", help="fetch again even when cached")
    fetch.set_defaults(func=_data_fetch)

    run = sub.add_parser(
        "run",
        help="run an experiment that writes result rows (as make experiments does)",
        description="Run mtrec.experiments.NAME; options after NAME go to the experiment "
        "(mtrec run NAME --help lists them).",
    )
    run.add_argument("experiment", choices=EXPERIMENTS, metavar="NAME",
                     help=f"one of {', '.join(EXPERIMENTS)}")  # fmt: skip
    run.add_argument("options", nargs=argparse.REMAINDER, help="the experiment's own options")
    run.set_defaults(func=_run)

    bench_parser = sub.add_parser("bench", help="CPU/GPU throughput benchmark")
    bench.add_arguments(bench_parser)
    bench_parser.set_defaults(func=bench.run.main)

    export = sub.add_parser(
        "export",
        help="export the distilled student and the MMoE scorer (notebook 09 sizes) to ONNX",
        description="Export to ONNX with a dynamic batch size, check onnxruntime against torch "
        "(max abs logit difference) and write <out>/<model>.onnx (+ .json). Needs the serve "
        "extra: pip install 'mtrec[serve]'.",
    )
    export.add_argument(
        "models", nargs="*", default=None, metavar="MODEL",
        help="student and/or mmoe (default: both)",
    )  # fmt: skip
    export.add_argument("--out", type=arg_path, default="exported",
                        help="output folder (default: exported/)")  # fmt: skip
    export.add_argument("--student", default=None, metavar="FILE",
                        help="StudentMLP weights (a safetensors state dict) to load first")  # fmt: skip
    export.add_argument("--mmoe", default=None, metavar="FILE",
                        help="MMoE weights (a safetensors state dict) to load first")  # fmt: skip
    export.add_argument("--atol", type=arg_float(min=0.0), default=1e-5,
                        help="parity tolerance on logits")  # fmt: skip
    export.add_argument("--check-batch", type=arg_int(min=1, max=1_000_000), default=64,
                        help="rows of the parity batch")  # fmt: skip
    export.set_defaults(func=_export)

    tour = sub.add_parser("tour", help="execute every numbered notebook in order")
    tour.add_argument("--list", action="store_true", help="only list the notebooks")
    tour.set_defaults(func=_tour)

    exercises = sub.add_parser(
        "exercises", help="list the classroom exercises, hand them out, grade what comes back"
    )
    exercises_sub = exercises.add_subparsers(dest="exercises_command", required=True)
    exercises_sub.add_parser("list", help="each exercise: notebook, function, time").set_defaults(
        func=_exercises_list
    )
    release = exercises_sub.add_parser(
        "release",
        help="write the student notebooks (outputs cleared, no solutions) and a README to OUT",
        description="Write notebooks/exercises/NN_*.ipynb with outputs cleared and a README for "
        "students into OUT, atomically (nothing is left half-written). Solutions are never copied.",
    )
    release.add_argument("out", type=arg_path, metavar="OUT", help="a new or empty folder")
    release.add_argument("--force", action="store_true", help="replace a non-empty OUT")
    release.set_defaults(func=_exercises_release)
    grade = exercises_sub.add_parser(
        "grade",
        help="grade a folder of handed-in notebooks into a CSV",
        description="Grade SUBMISSIONS/<student>_<exercise>.ipynb or SUBMISSIONS/<student>/"
        "<exercise>.ipynb: each notebook's cells tagged 'student' and the exercise's check run in "
        "a subprocess with a time limit. One CSV row per (student, exercise): cases_passed, "
        "cases_total, passed, first_failure, error, seconds, file.",
    )
    grade.add_argument("submissions", type=arg_path, metavar="SUBMISSIONS",
                       help="folder of handed-in notebooks")  # fmt: skip
    grade.add_argument("--out", type=arg_path, default="grades.csv",
                       help="the CSV to write (default: grades.csv)")  # fmt: skip
    grade.add_argument("--timeout", type=arg_float(min=0.1), default=None, metavar="SECONDS",
                       help="time for one notebook's code and check (default: 60 s; 900 s for "
                       "exercise 6)")  # fmt: skip
    grade.add_argument("--jobs", type=arg_int(min=1, max=64), default=1,
                       help="notebooks graded at once (default: 1)")  # fmt: skip
    grade.set_defaults(func=_exercises_grade)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "export":
        args.models = args.models or ["student", "mmoe"]
        args.weights = {"student": args.student, "mmoe": args.mmoe}
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
