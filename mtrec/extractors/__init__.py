"""Multimodal item features: text (pretrained transformer), image (CNN), audio (RNN), fusion."""

from mtrec.extractors.text import TextEncoder

__all__ = ["TextEncoder"]
