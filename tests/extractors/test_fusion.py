"""Fusion modules: shapes, per-modality weights, missing modalities, learning, bad input."""

import pytest
import torch

from mtrec.extractors.fusion import FUSIONS, AttentionFusion, ConcatFusion, GatedFusion

DIMS = {"text": 12, "image": 8, "audio": 6}


def features(batch=5, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return {m: torch.randn(batch, d, generator=generator) for m, d in DIMS.items()}


@pytest.mark.parametrize("name", sorted(FUSIONS))
def test_shapes_and_weights_sum_to_one(name):
    torch.manual_seed(0)
    fusion = FUSIONS[name](DIMS, 16)
    out, weights = fusion(features(), return_weights=True)
    assert out.shape == (5, 16)
    assert weights.shape == (5, 3)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(5))
    assert fusion(features()).shape == (5, 16)


@pytest.mark.parametrize("name", sorted(FUSIONS))
def test_absent_modality_gets_zero_weight_and_no_influence(name):
    torch.manual_seed(0)
    fusion = FUSIONS[name](DIMS, 16).eval()
    present = torch.tensor([[True, True, False]] * 5)
    x = features()
    out, weights = fusion(x, present=present, return_weights=True)
    assert torch.isfinite(out).all()
    assert (weights[:, 2] == 0).all()
    changed = dict(x, audio=torch.randn(5, 6) * 100)
    torch.testing.assert_close(fusion(changed, present=present), out)


@pytest.mark.usefixtures("one_thread")
def test_attention_weights_learn_the_informative_modality():
    """Targets depend on the image vector only: the pooling attention should favour image."""
    torch.manual_seed(0)
    fusion = AttentionFusion(DIMS, 16, num_heads=4)
    readout = torch.nn.Linear(16, 1)
    params = list(fusion.parameters()) + list(readout.parameters())
    optimizer = torch.optim.Adam(params, lr=1e-2)
    true = torch.randn(DIMS["image"])
    losses = []
    for step in range(120):
        x = features(batch=64, seed=step)
        target = x["image"] @ true
        loss = (readout(fusion(x)).squeeze(-1) - target).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-10:]) < 0.5 * sum(losses[:10])
    _, weights = fusion(features(batch=256, seed=999), return_weights=True)
    mean = weights.mean(dim=0)
    assert mean.argmax().item() == 1, mean  # modality order: text, image, audio


def test_gated_matches_a_hand_computation():
    torch.manual_seed(0)
    fusion = GatedFusion({"a": 3, "b": 3}, 4)
    x = {"a": torch.randn(2, 3), "b": torch.randn(2, 3)}
    pa, pb = fusion.project["a"](x["a"]), fusion.project["b"](x["b"])
    gates = fusion.gate(torch.cat([pa, pb], dim=1)).softmax(dim=-1)
    expected = gates[:, :1] * pa + gates[:, 1:] * pb
    torch.testing.assert_close(fusion(x), expected)


def test_bad_input_raises():
    fusion = ConcatFusion(DIMS, 8)
    with pytest.raises(ValueError, match="lack modalities"):
        fusion({"text": torch.zeros(2, 12)})
    with pytest.raises(ValueError, match=r"features\['image'\] must be"):
        fusion(dict(features(2), image=torch.zeros(2, 5)))
    with pytest.raises(ValueError, match="at least one present"):
        fusion(features(2), present=torch.zeros(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="divisible"):
        AttentionFusion(DIMS, 10, num_heads=4)
    with pytest.raises(ValueError, match="at least one modality"):
        GatedFusion({}, 8)
