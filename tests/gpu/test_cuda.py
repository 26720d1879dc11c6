"""Every model on CUDA: forward and backward agree with the CPU, and bf16 autocast stays finite.

These tests need a CUDA device; elsewhere each is skipped with the reason. They run on a GPU
machine with ``pytest -m gpu`` (``benchmarks/gpu/run.sh`` does it before ``mtrec bench``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch
from torch import nn

from mtrec.data.synthetic import random_batch, tiny_features
from mtrec.models.multitask.esmm import ESMM, ESMMConfig
from mtrec.models.multitask.mmoe import MMoE, MMoEConfig
from mtrec.models.multitask.ple import PLE, PLEConfig
from mtrec.models.multitask.shared_bottom import SharedBottom, SharedBottomConfig
from mtrec.models.scenario.scenario_moe import ScenarioMoE, ScenarioMoEConfig
from mtrec.models.scenario.star import STAR, STARConfig
from mtrec.models.sequential.sasrec import SASRec, SASRecConfig
from mtrec.models.student import StudentConfig, StudentMLP
from mtrec.nn.attention import MultiHeadAttention
from mtrec.nn.encoder_decoder import EncoderDecoder, EncoderDecoderConfig

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

Batch = dict[str, torch.Tensor]


def _click(model_cls: type, config: object, num_tasks: int = 2) -> tuple[nn.Module, Batch]:
    torch.manual_seed(0)
    batch = random_batch(tiny_features(), 64, num_tasks=num_tasks, num_scenarios=3)
    if num_tasks == 2:  # keep like ⊆ watch (ESMM's CTCVR label)
        batch["labels"][:, 1] *= batch["labels"][:, 0]
    return model_cls(config), batch


def _student() -> tuple[nn.Module, Batch]:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    batch = {
        "user_id": torch.randint(1, 50, (64,), generator=g),
        "item_id": torch.randint(1, 40, (64,), generator=g),
        "labels": (torch.rand(64, 2, generator=g) < 0.5).float(),
    }
    return StudentMLP(StudentConfig.tiny()), batch


def _sasrec() -> tuple[nn.Module, Batch]:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    items = torch.randint(1, 31, (16, 8), generator=g)
    return SASRec(SASRecConfig.tiny()), {"item_ids": items, "targets": items.roll(-1, 1)}


def _encoder_decoder() -> tuple[nn.Module, Batch]:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    batch = {
        "src": torch.randint(2, 12, (16, 10), generator=g),
        "tgt": torch.randint(2, 12, (16, 6), generator=g),
    }
    return EncoderDecoder(EncoderDecoderConfig.tiny()), batch


CASES: dict[str, Callable[[], tuple[nn.Module, Batch]]] = {
    "mmoe": lambda: _click(MMoE, MMoEConfig.tiny(num_tasks=2)),
    "ple": lambda: _click(PLE, PLEConfig.tiny(num_tasks=2)),
    "esmm": lambda: _click(ESMM, ESMMConfig.tiny()),
    "shared_bottom": lambda: _click(SharedBottom, SharedBottomConfig.tiny(num_tasks=2)),
    "star": lambda: _click(STAR, STARConfig.tiny(num_tasks=2)),
    "scenario_moe": lambda: _click(ScenarioMoE, ScenarioMoEConfig.tiny(num_tasks=2)),
    "student": _student,
    "sasrec": _sasrec,
    "encoder_decoder": _encoder_decoder,
}


def _to(batch: Batch, device: str) -> Batch:
    return {k: v.to(device) for k, v in batch.items()}


def _loss_and_grads(model: nn.Module, batch: Batch) -> tuple[torch.Tensor, list[torch.Tensor]]:
    model.zero_grad()
    loss = model.loss(batch).sum()
    loss.backward()
    return loss.detach().cpu(), [
        p.grad.detach().cpu() for p in model.parameters() if p.grad is not None
    ]


@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_and_backward_on_cuda_match_the_cpu(name):
    model, batch = CASES[name]()
    model.eval()  # no dropout, running norm statistics: the two devices see the same function
    cuda_model = copy.deepcopy(model).cuda()
    cpu_loss, cpu_grads = _loss_and_grads(model, batch)
    gpu_loss, gpu_grads = _loss_and_grads(cuda_model, _to(batch, "cuda"))
    torch.testing.assert_close(gpu_loss, cpu_loss, rtol=1e-4, atol=1e-5)
    assert len(gpu_grads) == len(cpu_grads) > 0
    for g_gpu, g_cpu in zip(gpu_grads, cpu_grads):
        torch.testing.assert_close(g_gpu, g_cpu, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bf16_autocast_train_step_is_finite_and_close_to_fp32(name):
    model, batch = CASES[name]()
    model = model.cuda().eval()
    batch = _to(batch, "cuda")
    fp32 = model.loss(batch).sum()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        bf16 = model.loss(batch).sum()
    bf16.backward()
    assert torch.isfinite(bf16)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    torch.testing.assert_close(bf16.float(), fp32, rtol=5e-2, atol=5e-2)


def test_attention_uses_a_fused_kernel_and_matches_torch():
    torch.manual_seed(0)
    mine = MultiHeadAttention(64, 4).cuda().eval()
    ref = nn.MultiheadAttention(64, 4, batch_first=True).cuda().eval()
    ref.load_state_dict(mine.state_dict())
    x = torch.randn(8, 128, 64, device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = mine(x, x, x)[0]
        expected = ref(x, x, x, need_weights=False)[0]
    torch.testing.assert_close(out.float(), expected.float(), rtol=2e-2, atol=2e-2)
    # The flash / memory-efficient kernels accept these shapes: no math fallback is needed.
    from torch.nn.attention import SDPBackend, sdpa_kernel

    q = x.view(8, 128, 4, 16).transpose(1, 2).to(torch.bfloat16)
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION]):
        torch.nn.functional.scaled_dot_product_attention(q, q, q)


def test_cuda_events_time_what_synchronize_waits_for():
    a = torch.randn(4096, 4096, device="cuda")
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    for _ in range(5):
        a = a @ a / 64.0
    end.record()
    torch.cuda.synchronize()
    assert end.elapsed_time(start) < 0 < start.elapsed_time(end)
