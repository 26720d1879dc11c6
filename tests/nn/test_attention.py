"""Attention: the formula, the fast path and torch.nn.MultiheadAttention agree (values and grads)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mtrec.nn.attention import MultiHeadAttention, causal_mask, scaled_dot_product_attention

pytestmark = pytest.mark.usefixtures("one_thread")

B, LQ, LK, D, H = 3, 5, 7, 16, 4


def _pair(bias: bool = True) -> tuple[MultiHeadAttention, nn.MultiheadAttention]:
    torch.manual_seed(0)
    ref = nn.MultiheadAttention(D, H, bias=bias, batch_first=True)
    ours = MultiHeadAttention(D, H, bias=bias)
    ours.load_state_dict(ref.state_dict())
    return ours, ref


def _padding(seed: int, length: int, *, full_row: bool) -> torch.Tensor:
    """(B, L) True = pad, each row keeps >= 1 key except row 0 when ``full_row``."""
    g = torch.Generator().manual_seed(seed)
    pad = torch.rand(B, length, generator=g) < 0.4
    pad[:, 0] = False
    if full_row:
        pad[0] = True
    return pad


def test_formula_matches_torch_sdpa_and_softmax_by_hand():
    q, k, v = torch.randn(2, 3, 4, 8), torch.randn(2, 3, 6, 8), torch.randn(2, 3, 6, 5)
    out, w = scaled_dot_product_attention(q, k, v, return_weights=True)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 3, 4))
    mask = causal_mask(4, 6)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(scaled_dot_product_attention(q, k, v, mask), ref, atol=1e-5, rtol=0)


def test_fully_masked_rows_give_zeros_and_finite_grads():
    q, k, v = (torch.randn(2, 4, 8, requires_grad=True) for _ in range(3))
    mask = torch.ones(2, 4, 4, dtype=torch.bool)
    mask[0, 1] = False  # query 1 of batch 0 sees nothing
    out = scaled_dot_product_attention(q, k, v, mask)
    assert torch.isfinite(out).all() and (out[0, 1] == 0).all()
    out.sum().backward()
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v))
    assert (q.grad[0, 1] == 0).all()


@pytest.mark.parametrize("case", ["none", "padding", "causal", "padding+causal", "full_rows"])
@pytest.mark.parametrize("bias", [True, False])
def test_mha_formula_fast_and_torch_agree(case, bias):
    ours, ref = _pair(bias)
    self_attn = "causal" in case
    lk = LQ if self_attn else LK
    torch.manual_seed(1)
    x = torch.randn(B, LQ, D, requires_grad=True)
    mem = x if self_attn else torch.randn(B, lk, D, requires_grad=True)
    masked = "pad" in case or case == "full_rows"
    pad = _padding(2, lk, full_row=case == "full_rows") if masked else None
    causal = "causal" in case
    kwargs = dict(key_padding_mask=pad, is_causal=causal)
    # torch: attn_mask True = NOT allowed; we pass its causal mask explicitly
    ref_mask = ~causal_mask(LQ, lk) if causal else None

    outs, grads = [], []
    for run in ("formula", "fast", "torch"):
        for t in (x, mem, *ours.parameters(), *ref.parameters()):
            t.grad = None
        keep = torch.ones(B, dtype=torch.bool)
        if case == "full_rows":
            keep[0] = False  # torch gives NaN values and grads there; ours gives zeros
        if run == "torch":  # fed only the rows torch can handle
            out, w = ref(
                x[keep],
                mem[keep],
                mem[keep],
                key_padding_mask=None if pad is None else pad[keep],
                attn_mask=ref_mask,
                need_weights=True,
                average_attn_weights=False,
            )
            module = ref
        else:
            out, w = ours(x, mem, mem, need_weights=run == "formula", **kwargs)
            module = ours
            if case == "full_rows":
                zero = ours.out_proj.bias.expand(LQ, D) if bias else torch.zeros(LQ, D)
                torch.testing.assert_close(out[0], zero)
                if w is not None:
                    assert (w[0] == 0).all()
            out, w = out[keep], None if w is None else w[keep]
        (out**2).sum().backward()
        outs.append((out.detach(), None if w is None else w.detach()))
        grads.append([x.grad[keep].clone(), *(p.grad.clone() for p in module.parameters())])
    (f_out, f_w), (fast_out, _), (t_out, t_w) = outs
    torch.testing.assert_close(f_out, t_out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fast_out, t_out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(f_w, t_w, atol=1e-5, rtol=1e-5)
    for a, b in zip(grads[0], grads[2]):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    for a, b in zip(grads[1], grads[2]):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert all(torch.isfinite(g).all() for g in grads[0] + grads[1])


def test_fast_path_all_masked_rows_no_nan_grads():
    ours, _ = _pair()
    x = torch.randn(B, LQ, D, requires_grad=True)
    pad = torch.zeros(B, LQ, dtype=torch.bool)
    pad[:, :2] = True  # left padding + causal: queries 0 and 1 see no key at all
    for need in (False, True):
        out, _ = ours(x, x, x, key_padding_mask=pad, is_causal=True, need_weights=need)
        assert torch.isfinite(out).all()
        torch.testing.assert_close(out[:, :2], ours.out_proj.bias.expand(B, 2, D))
        out.sum().backward()
        assert torch.isfinite(x.grad).all() and all(
            torch.isfinite(p.grad).all() for p in ours.parameters()
        )


def test_attn_mask_broadcast_shapes():
    ours, ref = _pair()
    x = torch.randn(B, LQ, D)
    mask = torch.rand(B, H, LQ, LQ) > 0.3
    mask[..., 0] = True
    a, _ = ours(x, x, x, attn_mask=mask)
    b, _ = ours(x, x, x, attn_mask=mask, need_weights=True)
    c, _ = ref(x, x, x, attn_mask=~mask.reshape(B * H, LQ, LQ))
    torch.testing.assert_close(a, c, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(b, c, atol=1e-5, rtol=1e-5)


def test_dropout_only_in_training():
    mha = MultiHeadAttention(D, H, dropout=0.5).eval()
    x = torch.randn(B, LQ, D)
    torch.testing.assert_close(mha(x, x, x)[0], mha(x, x, x)[0])
    mha.train()
    assert not torch.allclose(mha(x, x, x)[0], mha(x, x, x)[0])


def test_bad_inputs_name_expected_and_received():
    with pytest.raises(ValueError, match="multiple of num_heads.*d_model=10, num_heads=3"):
        MultiHeadAttention(10, 3)
    mha = MultiHeadAttention(D, H)
    x = torch.randn(B, LQ, D)
    with pytest.raises(ValueError, match=r"one B and Lk.*key \(2, 5, 16\)"):
        mha(x, torch.randn(2, LQ, D), torch.randn(2, LQ, D))
    with pytest.raises(ValueError, match=r"d_model=16.*\(3, 5, 8\)"):
        mha(torch.randn(B, LQ, 8), x, x)
    with pytest.raises(ValueError, match=r"key_padding_mask must be bool \(B, Lk\) = \(3, 5\)"):
        mha(x, x, x, key_padding_mask=torch.zeros(B, LQ + 1, dtype=torch.bool))
    with pytest.raises(ValueError, match="key_padding_mask must be bool"):
        mha(x, x, x, key_padding_mask=torch.zeros(B, LQ))
    with pytest.raises(ValueError, match=r"attn_mask must be a bool tensor.*torch.float32"):
        mha(x, x, x, attn_mask=torch.zeros(LQ, LQ))
    with pytest.raises(ValueError, match=r"\(3, 4, 5, 5\), got shape \(4, 5\)"):
        mha(x, x, x, attn_mask=torch.ones(4, LQ, dtype=torch.bool))
    with pytest.raises(ValueError, match="dtype torch.float32"):
        mha(x.double(), x.double(), x.double())
    with pytest.raises(ValueError, match=r"q \(2, 3, 8\), k \(2, 3, 4\)"):
        scaled_dot_product_attention(
            torch.randn(2, 3, 8), torch.randn(2, 3, 4), torch.randn(2, 3, 4)
        )
