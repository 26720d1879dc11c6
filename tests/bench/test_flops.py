"""FLOPs counted from a Transformer's config agree with torch's flop counter."""

import pytest
import torch
from torch import nn

from mtrec import bench


def _counted(module, *inputs, **kwargs):
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        module(*inputs, **kwargs)
    return counter.get_total_flops()


def test_transformer_flops_match_torch_flop_counter():
    d, ff, length, tgt, batch = 64, 128, 20, 12, 4
    x = torch.randn(batch, length, d)
    # attention block: with need_weights=True torch runs explicit bmm's, which the counter sees
    mha = nn.MultiheadAttention(d, 4, batch_first=True)
    config = bench.transformer_flops(d_model=d, d_ff=0, src_len=length, enc_layers=1)
    assert config == pytest.approx(_counted(mha, x, x, x, need_weights=True) / batch, rel=0.01)
    # the counter does not see the fused CPU attention kernel: add its 4 L_q L_k D by hand
    layer = nn.TransformerEncoderLayer(d, 4, ff, dropout=0.0, batch_first=True).train()
    config = bench.transformer_flops(d_model=d, d_ff=ff, src_len=length, enc_layers=1)
    counted = _counted(layer, x) / batch + 4 * length * length * d
    assert config == pytest.approx(counted, rel=0.01)
    # encoder-decoder: decoder self + cross attention and an output projection
    transformer = nn.Transformer(d, 4, 1, 1, ff, dropout=0.0, batch_first=True).train()
    head = nn.Linear(d, 50)
    y = torch.randn(batch, tgt, d)
    counted = _counted(lambda s, t: head(transformer(s, t)), x, y) / batch
    counted += 4 * d * (length * length + tgt * tgt + tgt * length)
    full = bench.transformer_flops(
        d_model=d, d_ff=ff, src_len=length, enc_layers=1, tgt_len=tgt, dec_layers=1, out_dim=50
    )
    assert full == pytest.approx(counted, rel=0.01)
    train = bench.transformer_flops(d_model=d, d_ff=ff, src_len=length, enc_layers=1, train=True)
    assert train == 3 * config


@pytest.mark.parametrize("name", ["encoder_decoder", "sasrec"])
def test_config_flops_of_the_transformer_models_match_the_flop_counter(name):
    case = bench.encoder_decoder_case() if name == "encoder_decoder" else bench.sasrec_case()
    built = case.build(2)
    built.model.eval()
    counted = (
        bench.counted_flops(
            lambda: built.loss(built.batch) if built.loss else built.model.loss(built.batch)
        )
        / 2
    )
    if name == "encoder_decoder":  # fused attention kernels are invisible to the counter
        d, src, tgt = bench.ENCDEC["d_model"], bench.ENCDEC_SRC, bench.ENCDEC_TGT
        counted += 4 * d * (2 * src * src + 2 * (tgt * tgt + tgt * src))
    else:
        d, length = bench.SASREC["d_model"], bench.SASREC["max_len"]
        counted += 4 * d * bench.SASREC["num_layers"] * length * length
    assert built.flops_per_sample == pytest.approx(counted, rel=0.03)
