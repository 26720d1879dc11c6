"""Multimodal item features: text (pretrained transformer), image (CNN), audio (RNN), fusion.

Submodules import their heavy dependencies (transformers, torchvision, torchaudio) only when used.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TextEncoder": "text",
    "ImageEncoder": "image",
    "AudioEncoder": "audio",
    "load_audio": "audio",
    "ConcatFusion": "fusion",
    "GatedFusion": "fusion",
    "AttentionFusion": "fusion",
    "FUSIONS": "fusion",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mtrec.extractors' has no attribute {name!r}")
    return getattr(importlib.import_module(f"mtrec.extractors.{_EXPORTS[name]}"), name)
