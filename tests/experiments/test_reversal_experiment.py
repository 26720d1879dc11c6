"""mtrec.experiments.reversal: the toy task, the stated model's leak, the correct decoder's mask."""

import torch

from mtrec.experiments import reversal
from mtrec.nn.encoder_decoder import EncoderDecoder, EncoderDecoderConfig


def test_batches_reverse_and_the_decoder_input_starts_with_the_start_token():
    src, tgt = reversal.reverse_batch(4, torch.Generator().manual_seed(0))
    assert src.shape == (4, reversal.LENGTH) and torch.equal(tgt, src.flip(1))
    assert int(src.min()) >= 2 and int(src.max()) < reversal.VOCAB
    shifted = reversal.shift(tgt)
    assert (shifted[:, 0] == 1).all() and torch.equal(shifted[:, 1:], tgt[:, :-1])


def test_the_stated_model_reads_the_future_and_the_transformer_does_not():
    torch.manual_seed(0)
    src, tgt = reversal.reverse_batch(2, torch.Generator().manual_seed(1))
    stated = reversal.StatedSeq2Seq().eval()
    correct = EncoderDecoder(EncoderDecoderConfig.tiny(max_len=8)).eval()
    assert stated(src, reversal.shift(tgt)).shape == (2, reversal.LENGTH, reversal.VOCAB)
    assert reversal.first_position_change(stated, src, tgt) > 1e-4
    assert reversal.first_position_change(correct, src, tgt) < 1e-6


def test_training_lowers_the_loss_and_scores_are_rates():
    torch.manual_seed(0)
    model = EncoderDecoder(EncoderDecoderConfig.tiny(max_len=8))
    src, tgt = reversal.reverse_batch(64, torch.Generator().manual_seed(2))

    def loss():
        with torch.no_grad():
            logits = model(src, reversal.shift(tgt))
            return torch.nn.functional.cross_entropy(logits.flatten(0, 1), tgt.flatten()).item()

    before = loss()
    reversal.train_toy(model, steps=30)
    assert loss() < before
    teacher, exact = reversal.toy_scores(model, src, tgt)
    assert 0 <= exact <= teacher <= 1
