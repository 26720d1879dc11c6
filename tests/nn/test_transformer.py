"""Transformer blocks agree with torch.nn layers; the encoder-decoder learns to reverse sequences."""

import pytest
import torch
from torch import nn

from mtrec.nn.attention import MultiHeadAttention
from mtrec.nn.encoder_decoder import EncoderDecoder, EncoderDecoderConfig
from mtrec.nn.transformer import (
    Decoder,
    DecoderLayer,
    Encoder,
    EncoderLayer,
    LearnedPositionalEncoding,
    SinusoidalPositionalEncoding,
    stated_decoder,
    stated_encoder,
)

pytestmark = pytest.mark.usefixtures("one_thread")

B, L, D, H, FF = 3, 6, 16, 4, 32


def _pad(length: int) -> torch.Tensor:
    pad = torch.zeros(B, length, dtype=torch.bool)
    pad[0, -2:] = True
    pad[2, -1:] = True
    return pad


@pytest.mark.parametrize("norm_first", [True, False])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_encoder_layer_matches_torch(norm_first, activation):
    torch.manual_seed(0)
    ref = nn.TransformerEncoderLayer(
        D, H, FF, dropout=0.0, activation=activation, batch_first=True, norm_first=norm_first
    )
    ours = EncoderLayer(D, H, FF, dropout=0.0, activation=activation, norm_first=norm_first)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(B, L, D, requires_grad=True)
    pad = _pad(L)
    causal = nn.Transformer.generate_square_subsequent_mask(L) == float("-inf")
    ref.train()  # the slow, exact path (eval mode may take torch's nested-tensor fast path)
    for is_causal in (False, True):
        want = ref(x, src_key_padding_mask=pad, src_mask=causal if is_causal else None)
        got = ours(x, padding_mask=pad, is_causal=is_causal)
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
        (gx,) = torch.autograd.grad(got.square().sum(), x)
        (wx,) = torch.autograd.grad(want.square().sum(), x)
        torch.testing.assert_close(gx, wx, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("norm_first", [True, False])
def test_decoder_layer_matches_torch(norm_first):
    torch.manual_seed(0)
    ref = nn.TransformerDecoderLayer(D, H, FF, dropout=0.0, batch_first=True, norm_first=norm_first)
    ours = DecoderLayer(D, H, FF, dropout=0.0, norm_first=norm_first)
    ours.load_state_dict(ref.state_dict())
    y, memory = torch.randn(B, L, D), torch.randn(B, L + 2, D)
    y_pad, m_pad = _pad(L), _pad(L + 2)
    causal = nn.Transformer.generate_square_subsequent_mask(L) == float("-inf")
    want = ref(
        y, memory, tgt_mask=causal, tgt_key_padding_mask=y_pad, memory_key_padding_mask=m_pad
    )
    got = ours(y, memory, padding_mask=y_pad, memory_padding_mask=m_pad)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_stacks_match_torch():
    torch.manual_seed(0)
    ref = nn.TransformerEncoder(
        nn.TransformerEncoderLayer(D, H, FF, dropout=0.0, batch_first=True, norm_first=True),
        num_layers=2,
        norm=nn.LayerNorm(D),
        enable_nested_tensor=False,
    )
    ours = Encoder(2, D, H, d_ff=FF, dropout=0.0, norm_first=True)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(B, L, D)
    torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=1e-5)
    dec = Decoder(2, D, H, d_ff=FF, dropout=0.0, norm_first=False)
    assert isinstance(dec.norm, nn.Identity) and dec(x, x).shape == (B, L, D)


def test_positional_encodings():
    pe = SinusoidalPositionalEncoding(8, max_len=20)
    table = pe.encoding(20)
    torch.testing.assert_close(table[0], torch.tensor([0.0, 1.0] * 4))
    torch.testing.assert_close(table[3, 0], torch.sin(torch.tensor(3.0)))
    torch.testing.assert_close(table[3, 3], torch.cos(torch.tensor(3.0 / 10000 ** (2 / 8))))
    x = torch.zeros(2, 5, 8)
    torch.testing.assert_close(pe(x), table[:5].expand(2, 5, 8))
    learned = LearnedPositionalEncoding(8, max_len=20)
    assert learned(x).shape == (2, 5, 8)
    with pytest.raises(ValueError, match="exceeds max_len 20"):
        pe(torch.zeros(1, 21, 8))


def _reverse_batch(n: int, g: torch.Generator, length: int = 6) -> dict[str, torch.Tensor]:
    src = torch.randint(2, 12, (n, length), generator=g)  # tokens 2..11 (0 pad, 1 bos)
    return {"src": src, "tgt": src.flip(1)}


@pytest.mark.slow
def test_greedy_decoding_learns_to_reverse():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    model = EncoderDecoder(EncoderDecoderConfig.tiny())
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    for _ in range(250):
        loss = model.loss(_reverse_batch(64, g))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    test = _reverse_batch(200, torch.Generator().manual_seed(99))
    out = model.greedy_decode(test["src"], 6)
    exact = (out == test["tgt"]).all(dim=1).float().mean().item()
    # chance is 10^-6 per sequence; 250 steps reach 0.95-1.0 depending on the CPU's float kernels
    assert exact >= 0.9, exact
    seqs, scores = model.beam_search(test["src"][:5], 6, beam_size=3)
    assert seqs.shape == (5, 3, 6) and bool((scores[:, :-1] >= scores[:, 1:]).all())
    assert torch.equal(seqs[:, 0], test["tgt"][:5])
    # no_repeat + allowed restrict what may be emitted
    allowed = torch.zeros(12, dtype=torch.bool)
    allowed[2:8] = True
    out = model.greedy_decode(test["src"][:5], 6, allowed=allowed, no_repeat=True)
    assert bool(((out >= 2) & (out < 8)).all())
    assert all(len(set(row.tolist())) == 6 for row in out)


def test_decoder_is_causal_and_padding_is_ignored():
    torch.manual_seed(0)
    model = EncoderDecoder(EncoderDecoderConfig.tiny()).eval()
    src = torch.tensor([[3, 4, 5, 0, 0]])
    tgt = torch.tensor([[1, 6, 7, 8]])
    base = model(src, tgt)
    changed = model(src, torch.tensor([[1, 6, 9, 9]]))
    torch.testing.assert_close(base[:, :2], changed[:, :2])  # the future does not leak
    longer = model(torch.tensor([[3, 4, 5, 0, 0, 0, 0]]), tgt)  # more padding: same output
    torch.testing.assert_close(base, longer, atol=1e-5, rtol=1e-5)


def test_stated_decoder_leaks_the_future_and_needs_equal_lengths():
    torch.manual_seed(0)
    attn, n1, n2 = MultiHeadAttention(D, H), nn.LayerNorm(D), nn.LayerNorm(D)
    y, enc = torch.randn(1, L, D), torch.randn(1, L, D)
    out = stated_decoder(y, enc, attn, n1, n2)
    y2 = y.clone()
    y2[:, -1] += 1.0  # change only the last (future) position
    assert not torch.allclose(stated_decoder(y2, enc, attn, n1, n2)[:, 0], out[:, 0])
    with pytest.raises(ValueError, match="needs equal shapes"):
        stated_decoder(y, torch.randn(1, L + 1, D), attn, n1, n2)
    pe = SinusoidalPositionalEncoding(D).encoding(L)
    assert stated_encoder(y, attn, n1, n2, pe).shape == (1, L, D)


def test_bad_config_and_inputs():
    with pytest.raises(ValueError, match="divisible by num_heads"):
        EncoderDecoderConfig.tiny(d_model=30, num_heads=4)
    with pytest.raises(ValueError, match="positional must be"):
        EncoderDecoderConfig.tiny(positional="rotary")
    with pytest.raises(ValueError, match="activation must be"):
        EncoderLayer(D, H, activation="tanh")
    model = EncoderDecoder(EncoderDecoderConfig.tiny())
    with pytest.raises(ValueError, match=r"src must be \(B, Ls\) int64"):
        model.encode(torch.zeros(2, 3))
