"""Test-wide settings: no network outside loopback, offline Hugging Face, Agg backend."""

import os

os.environ.setdefault("MTREC_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

from mtrec.utils import block_network

block_network()
