"""Command line: ``mtrec data list|fetch``, ``mtrec bench``, ``mtrec tour``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from mtrec import bench
from mtrec.utils import REPO_ROOT


def _data_list(args: argparse.Namespace) -> int:
    from mtrec.data.registry import DATASETS, cache_dir, is_cached

    print(f"cache: {cache_dir()}")
    print(f"{'name':22} {'rows':>7}  {'cached':6}  license")
    for name, entry in sorted(DATASETS.items()):
        cached = "yes" if is_cached(name) else "no"
        print(f"{name:22} {entry.rows:>7}  {cached:6}  {entry.license}")
    return 0


def _data_fetch(args: argparse.Namespace) -> int:
    from mtrec.data.registry import DataError, fetch

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

    bench_parser = sub.add_parser("bench", help="CPU/GPU throughput benchmark")
    bench.add_arguments(bench_parser)
    bench_parser.set_defaults(func=bench.run.main)

    tour = sub.add_parser("tour", help="execute every numbered notebook in order")
    tour.add_argument("--list", action="store_true", help="only list the notebooks")
    tour.set_defaults(func=_tour)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
