"""The on-disk embedding cache of :class:`mtrec.extractors.text.TextEncoder`.

A vector is stored under the sha256 of its text (:func:`text_hashes`), in a folder named by
:func:`cache_folder`: ``<cache_dir>/<model folder name>-<max_length>-<key>``. The key
(:func:`cache_key`) hashes the model's identity (:func:`model_identity`: its files, or its Hub
commit and config) and every setting that changes a vector (max length, pooling, normalisation,
lower-casing, precision), so a vector computed under other settings is never served. Inside the
folder, :class:`EmbeddingCache` keeps safetensors shards, each checked against the sha256 in its
own metadata when read.

Example:
    >>> cache = EmbeddingCache(Path("/tmp/emb"), dim=384)  # doctest: +SKIP
    >>> cache.lookup(text_hashes(["Toy Story (1995)"]))  # [None]: not stored  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mtrec.utils import share_file

# The cache's warnings keep the logger name of TextEncoder's module, where they were logged before
# the cache had a module of its own: logging filters set on "mtrec.extractors.text" still apply.
log = logging.getLogger("mtrec.extractors.text")

CACHE_VERSION = 1  # bump when pooling or storage changes, so old cache entries are not reused
MAX_SHARDS = 32  # merge a cache directory's shards into one when it holds more than this
HASH_BYTES = 32  # bytes of a sha256 digest: the width of a shard's ``hashes`` rows

_UNWRITABLE: set[Path] = set()  # cache directories already warned about (one warning each)
_UNREADABLE: set[Path] = set()  # cache directories whose unreadable shards were warned about


def unreadable_note(path: Path) -> str | None:
    """Why ``path`` (an existing file) cannot be read by this user, with the fix; None if it can.

    safetensors reports a file it may not open as "No such file or directory": this says what
    is really wrong.
    """
    if not path.exists() or os.access(path, os.R_OK):
        return None
    info = path.stat()
    return (
        f"{path} exists but this user may not read it (permission denied: mode "
        f"{info.st_mode & 0o777:o}, owner uid {info.st_uid}); ask its owner to make it readable "
        f"(chmod a+r {path}), or pass cache_dir= a folder of your own"
    )


def text_hashes(texts: Sequence[str]) -> list[bytes]:
    """sha256 digest (32 bytes) of each text's UTF-8 encoding."""
    return [hashlib.sha256(text.encode("utf-8")).digest() for text in texts]


def model_identity(name_or_path: str, config: Any) -> str:
    """A string that changes when the model's weights or tokenizer change."""
    root = Path(name_or_path)
    parts: dict[str, Any] = {"name": root.name if root.is_dir() else name_or_path}
    if root.is_dir():
        digest = hashlib.sha256()
        for file in sorted(root.iterdir()):
            if file.is_file() and file.suffix in {".json", ".txt", ".model"}:
                digest.update(file.name.encode() + file.read_bytes())
            elif file.is_file() and file.suffix in {".safetensors", ".bin", ".pt"}:
                digest.update(f"{file.name}:{file.stat().st_size}".encode())
        parts["files"] = digest.hexdigest()
    else:
        parts["commit"] = getattr(config, "_commit_hash", None) or ""
        parts["config"] = hashlib.sha256(config.to_json_string().encode()).hexdigest()
    return json.dumps(parts, sort_keys=True)


def cache_key(
    identity: str,
    *,
    max_length: int,
    pooling: str,
    normalize: bool,
    lowercase: bool,
    precision: str,
) -> str:
    """20 hex digits naming one (model, settings) pair's cache folder.

    Args:
        identity: :func:`model_identity` of the model.
        max_length, pooling, normalize, lowercase, precision: the encoder's settings.
    """
    # the same key as before these options existed for (mean, l2), so old caches stay valid
    key_text = (
        f"v{CACHE_VERSION}|{identity}|max_length={max_length}|{pooling}|"
        f"{'l2' if normalize else 'raw'}{'|lower' if lowercase else ''}"
        f"{'' if precision == 'fp32' else '|' + precision}"
    )
    return hashlib.sha256(key_text.encode()).hexdigest()[:20]


def cache_folder(
    cache_dir: Path | str | None, model_name_or_path: str, max_length: int, key: str
) -> Path:
    """``<cache_dir>/<model folder name>-<max_length>-<key>``; ``cache_dir=None`` means
    ``mtrec.data.cache_dir() / "embeddings"``."""
    if cache_dir is None:
        from mtrec.data import cache_dir as data_cache_dir

        cache_dir = data_cache_dir() / "embeddings"
    label = Path(model_name_or_path).name or "model"
    return Path(cache_dir) / f"{label}-{max_length}-{key}"


def _payload_sha256(hashes: np.ndarray, embeddings: torch.Tensor) -> str:
    """sha256 of a shard's tensors as stored (its ``hashes`` bytes, then its ``embeddings``)."""
    digest = hashlib.sha256(np.ascontiguousarray(hashes).tobytes())
    digest.update(embeddings.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class EmbeddingCache:
    """Embeddings stored as safetensors shards in one directory: ``hashes`` (N, 32) uint8 and
    ``embeddings`` (N, D) float32. New rows go to a new shard (written to a temporary name and
    renamed), so concurrent writers never corrupt each other; nothing is pickled.

    Each shard carries the sha256 of its tensors in its safetensors metadata (the cache's index
    of what was written). On load, a shard whose bytes no longer match (a flipped bit on disk)
    is discarded with a warning and deleted, and its texts are encoded again; rows that are not
    finite are never returned. Shards written before the checksum existed are read as they are,
    still without non-finite rows. A cache that cannot be written (read-only folder, full disk)
    degrades to "compute, don't store" with one warning per directory.

    Args:
        directory: the folder of shards (:func:`cache_folder`); created on the first write.
        dim: D, the vector width; shards of another width are ignored.
    """

    def __init__(self, directory: Path, dim: int) -> None:
        self.directory = directory
        self.dim = dim
        self.index: dict[bytes, int] = {}  # text hash → row of table()
        self.rows: list[torch.Tensor] = []  # (n_i, D) blocks
        self._table: torch.Tensor | None = torch.empty(0, dim)
        self._loaded = False

    def _read_shard(self, shard: Path) -> dict[str, torch.Tensor] | None:
        """A shard's tensors, or None (with a warning) when it is unreadable or corrupted."""
        from safetensors import safe_open

        try:
            with safe_open(str(shard), framework="pt") as handle:
                data = {key: handle.get_tensor(key) for key in handle.keys()}
                expected = (handle.metadata() or {}).get("sha256")
            hashes, embeddings = data["hashes"].numpy(), data["embeddings"]
        except Exception as error:  # a truncated or foreign file: skip it, never crash
            note = unreadable_note(shard)
            if note is None:
                log.warning("ignoring unreadable embedding cache shard %s (%s)", shard, error)
            elif self.directory not in _UNREADABLE:  # one warning per folder, not per shard
                _UNREADABLE.add(self.directory)
                log.warning("ignoring embedding cache shards: %s; their texts are encoded again "
                            "(warned once per folder)", note)  # fmt: skip
            return None
        if expected is not None and _payload_sha256(hashes, embeddings) != expected:
            log.warning(
                "embedding cache shard %s does not match its sha256 (the file is corrupted); "
                "discarding it, its texts will be encoded again",
                shard,
            )
            with contextlib.suppress(OSError):
                shard.unlink()
            return None
        return data

    def _load(self) -> None:
        self._loaded = True
        if not self.directory.is_dir():
            return
        shards = sorted(self.directory.glob("shard-*.safetensors"))
        for shard in shards:
            data = self._read_shard(shard)
            if data is None:
                continue
            hashes, embeddings = data["hashes"].numpy(), data["embeddings"].float()
            finite = torch.isfinite(embeddings).all(dim=1) if embeddings.ndim == 2 else None
            if finite is not None and not bool(finite.all()):  # never serve NaN/inf: re-encode
                log.warning(
                    "dropping %d non-finite embeddings of cache shard %s; they will be encoded "
                    "again",
                    int((~finite).sum()),
                    shard,
                )
                hashes, embeddings = hashes[finite.numpy()], embeddings[finite]
            self._add(hashes, embeddings)
        if len(shards) > MAX_SHARDS and self.index:
            self._compact(shards)

    def _add(self, hashes: np.ndarray, embeddings: torch.Tensor) -> None:
        if embeddings.ndim != 2 or embeddings.shape[1] != self.dim:
            return  # written by a model of another width under the same key: ignore
        start = sum(len(block) for block in self.rows)
        keep = []
        for offset, digest in enumerate(hashes):
            key = digest.tobytes()
            if key not in self.index:
                self.index[key] = start + len(keep)
                keep.append(offset)
        if keep:
            self.rows.append(embeddings[keep])
            self._table = None

    def _compact(self, shards: list[Path]) -> None:
        table = self.table()
        hashes = np.zeros((len(self.index), HASH_BYTES), dtype=np.uint8)
        for key, row in self.index.items():
            hashes[row] = np.frombuffer(key, dtype=np.uint8)
        if not self._write(hashes, table):
            return
        for shard in shards:
            with contextlib.suppress(OSError):
                shard.unlink(missing_ok=True)

    def _write(self, hashes: np.ndarray, embeddings: torch.Tensor) -> bool:
        """Write one shard; False (one warning per directory) when the cache is not writable."""
        from safetensors.torch import save_file

        if self.directory in _UNWRITABLE:
            return False
        name = f"shard-{uuid.uuid4().hex}.safetensors"
        tmp = self.directory / f".{name}.tmp"
        embeddings = embeddings.contiguous()
        metadata = {"sha256": _payload_sha256(hashes, embeddings)}
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            save_file(
                {"hashes": torch.from_numpy(hashes), "embeddings": embeddings},
                str(tmp),
                metadata=metadata,
            )
            share_file(tmp)  # safetensors writes 0600: a colleague must be able to read it
            os.replace(tmp, self.directory / name)
        except Exception as error:  # OSError, or safetensors' own SafetensorError
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            _UNWRITABLE.add(self.directory)
            log.warning(
                "could not write the embedding cache in %s (%s); computing embeddings without "
                "storing them (warned once). Pass cache_dir= a writable folder or cache=False",
                self.directory,
                error,
            )
            return False
        return True

    def table(self) -> torch.Tensor:
        """(N, D) every cached vector; row ``index[hash]`` belongs to that text."""
        if self._table is None:
            self._table = torch.cat(self.rows) if self.rows else torch.empty(0, self.dim)
            self.rows = [self._table]
        return self._table

    def lookup(self, keys: list[bytes]) -> list[int | None]:
        """Each key's row in :meth:`table`, or None when not cached (reads the shards once)."""
        if not self._loaded:
            self._load()
        return [self.index.get(key) for key in keys]

    def store(self, keys: list[bytes], embeddings: torch.Tensor, *, persist: bool) -> None:
        """Add (N, D) ``embeddings`` of the texts hashed to ``keys``; a shard too if ``persist``."""
        hashes = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(-1, HASH_BYTES).copy()
        self._add(hashes, embeddings)
        if persist:  # a read-only cache keeps the in-memory copy only
            self._write(hashes, embeddings)

    def delete_shards(self) -> None:
        """Delete this directory's shards from disk (the in-memory vectors are left as they are).

        Raises:
            PermissionError: a shard cannot be deleted (a read-only folder).
        """
        for shard in self.directory.glob("shard-*.safetensors"):
            try:
                shard.unlink(missing_ok=True)
            except OSError as error:
                raise PermissionError(
                    f"cannot delete the embedding cache shard {shard} ({error}); the cache "
                    "folder is read-only: delete it as its owner, or use another cache_dir="
                ) from error
