"""Distillation losses against hand computations and torch, and the T² scale."""

import pytest
import torch
import torch.nn.functional as F

from mtrec.train.distill import (
    feature_distillation_loss,
    listwise_kl_loss,
    ranking_aware_loss,
    ranking_aware_weights,
    response_distillation_loss,
)


# ------------------------------------------------------------------------- response losses
def test_soft_bce_matches_a_hand_computation():
    s = torch.tensor([[0.5, -1.0], [2.0, 0.0], [-0.3, 1.5]])
    t = torch.tensor([[1.0, -2.0], [3.0, 0.5], [0.0, -1.0]])
    temperature = 2.0
    p = 1 / (1 + torch.exp(-t / temperature))
    q = 1 / (1 + torch.exp(-s / temperature))
    hand = -(p * torch.log(q) + (1 - p) * torch.log(1 - q)).mean(dim=0) * temperature**2
    got = response_distillation_loss(s, t, temperature=temperature, kind="bce")
    torch.testing.assert_close(got, hand)


def test_soft_kl_matches_torch_kl_div_on_two_class_distributions():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(16, 3, generator=g), torch.randn(16, 3, generator=g) * 2
    temperature = 3.0
    p = torch.sigmoid(t / temperature)
    log_q = F.logsigmoid(torch.stack([s, -s], dim=-1) / temperature)  # (B, T, 2)
    target = torch.stack([p, 1 - p], dim=-1)
    want = F.kl_div(log_q, target, reduction="none").sum(-1).mean(0) * temperature**2
    got = response_distillation_loss(s, t, temperature=temperature, kind="kl")
    torch.testing.assert_close(got, want)
    assert response_distillation_loss(t, t, kind="kl").abs().max() < 1e-6  # KL(p || p) = 0


def test_t_squared_keeps_the_gradient_scale_across_temperatures():
    g = torch.Generator().manual_seed(0)
    t = torch.randn(64, 1, generator=g)
    grads = {}
    for temperature in (1.0, 10.0, 20.0):
        s = torch.randn(64, 1, generator=torch.Generator().manual_seed(1)).requires_grad_()
        response_distillation_loss(s, t, temperature=temperature).sum().backward()
        grads[temperature] = s.grad.clone()
    # d/ds T² BCE(s/T, sigmoid(t/T)) = T (sigmoid(s/T) - sigmoid(t/T)) → (s - t)/4 at large T
    torch.testing.assert_close(grads[20.0], grads[10.0], rtol=0.03, atol=1e-3)
    s = torch.randn(64, 1, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(grads[20.0], (s - t) / (4 * 64), rtol=0.03, atol=1e-3)
    # without the T² factor the gradient would shrink by 1/T²: check the exact relation at T=10
    s10 = s.clone().requires_grad_()
    (F.binary_cross_entropy_with_logits(s10 / 10, torch.sigmoid(t / 10))).backward()
    torch.testing.assert_close(grads[10.0], s10.grad * 100)


# -------------------------------------------------------------------------- ranking losses
def test_listwise_kl_matches_torch_kl_div():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(8, 20, generator=g), torch.randn(8, 20, generator=g)
    temperature = 2.0
    want = (
        F.kl_div(
            F.log_softmax(s / temperature, -1),
            F.softmax(t / temperature, -1),
            reduction="batchmean",
        )
        * temperature**2
    )
    torch.testing.assert_close(listwise_kl_loss(s, t, temperature=temperature), want)
    assert listwise_kl_loss(t, t) < 1e-6


def test_listwise_kl_ignores_excluded_items():
    s, t = torch.randn(4, 6), torch.randn(4, 6)
    t_excluded = t.clone()
    t_excluded[:, 0] = float("-inf")
    got = listwise_kl_loss(s, t_excluded)
    want = listwise_kl_loss(s[:, 1:], t[:, 1:])
    torch.testing.assert_close(got, want)


def test_ranking_aware_weights_follow_the_teacher_top_k():
    t = torch.tensor([[5.0, 4.0, 3.0, 2.0, 1.0, 0.0]])
    top, w = ranking_aware_weights(t, t, top_k=3)
    assert top.tolist() == [[0, 1, 2]]
    torch.testing.assert_close(w.sum(dim=-1), torch.ones(1))
    assert bool((w[:, :-1] > w[:, 1:]).all())  # earlier teacher ranks weigh more
    s = -t  # the student ranks the teacher's top-3 last: consistency is 0 for all
    _, w_inconsistent = ranking_aware_weights(s, t, top_k=3, gammas=(0.0, 0.0, 1.0))
    torch.testing.assert_close(w_inconsistent, torch.full((1, 3), 1 / 3))  # uniform fallback


def test_ranking_aware_loss_moves_the_student_top_k_towards_the_teacher():
    g = torch.Generator().manual_seed(0)
    t = torch.randn(16, 30, generator=g)
    s = torch.zeros(16, 30, requires_grad=True)
    opt = torch.optim.Adam([s], lr=0.1)
    for _ in range(100):
        opt.zero_grad()
        ranking_aware_loss(s, t, top_k=5).backward()
        opt.step()
    overlap = (t.topk(5).indices[:, :, None] == s.topk(5).indices[:, None, :]).any(-1)
    assert overlap.float().mean() > 0.95


def test_feature_losses_match_torch():
    a, b = torch.randn(6, 5), torch.randn(6, 5)
    torch.testing.assert_close(feature_distillation_loss(a, b), F.mse_loss(a, b))
    assert feature_distillation_loss(a, 3 * a, kind="cosine") < 1e-6
    with pytest.raises(ValueError, match="mse"):
        feature_distillation_loss(a, b, kind="l1")
