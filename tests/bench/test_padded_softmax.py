"""The padded gate softmax of the levers: the AVX2 kernel's values, bit for bit, on any CPU."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from mtrec.bench.levers import padded_softmax

# 8 to 16 wide: narrower rows take the scalar path on an AVX2 CPU too, and wider ones are summed
# in another order by the AVX2 and AVX-512 kernels.
WIDTHS = (8, 12, 15, 16)


def digests(softmax: Callable[[torch.Tensor], torch.Tensor]) -> dict[str, str]:
    """Width → sha256 of ``softmax`` and its input gradient on seeded (4096, 3, width) logits.

    One gate row in three has ``-inf`` logits, as where PLE masks out other tasks' experts.
    """
    found = {}
    for width in WIDTHS:
        g = torch.Generator().manual_seed(width)
        logits = 3 * torch.randn(4096, 3, width, generator=g)
        logits[:, 1, width // 2 :] = float("-inf")
        logits.requires_grad_(True)
        out = softmax(logits)
        out.backward(torch.randn(out.shape, generator=g))
        data = out.detach().numpy().tobytes() + logits.grad.numpy().tobytes()
        found[str(width)] = hashlib.sha256(data).hexdigest()
    return found


def _child(code: str, **env: str) -> str:
    """stdout of ``code`` run by this Python with ``env`` added, able to import this module."""
    run = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent), **env},
        timeout=300,
        check=True,
    )
    return run.stdout.strip()


def test_padded_softmax_is_bit_identical_to_the_avx2_kernels():
    """Same bits on an AVX2 and an AVX-512 machine, forward and backward, 8 to 16 wide.

    On an AVX-512 CPU plain ``torch.softmax`` fails this for widths 8–15: the scalar path it takes
    there rounds otherwise.
    """
    code = (  # one child: the kernels it runs, and plain softmax's digests under them
        "import json, torch, test_padded_softmax as t; print(json.dumps(["
        "torch.backends.cpu.get_cpu_capability(), t.digests(lambda x: x.softmax(-1))]))"
    )
    capability, reference = json.loads(_child(code, ATEN_CPU_CAPABILITY="avx2"))
    if capability != "AVX2":
        pytest.skip(f"this CPU runs no AVX2 kernels (capability {capability})")
    here = digests(padded_softmax)
    assert here == reference, [w for w in here if here[w] != reference[w]]


def test_padded_softmax_keeps_shape_layout_and_values():
    x = torch.randn(5, 3, 12)
    out = padded_softmax(x)
    assert out.shape == x.shape and out.is_contiguous()
    torch.testing.assert_close(out, torch.softmax(x, -1))
    wide = torch.randn(4, 40)  # padded to 48
    torch.testing.assert_close(padded_softmax(wide), torch.softmax(wide, -1))
