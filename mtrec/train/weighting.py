"""Task weighting: modules that turn a (T,) vector of task losses into the scalar to minimise.

They are used through :func:`mtrec.train.fit`: pass one as ``fit(..., weighting=...)``; ``fit``
calls it on the (T,) vector that ``model.loss(batch)`` returns, adds its parameters to the
optimiser, and never looks at the model's type. Without one, ``fit`` minimises the plain sum.
Example::

    from mtrec.data import TensorBatcher
    from mtrec.models import MMoE, MMoEConfig
    from mtrec.train import fit
    from mtrec.train.weighting import GradNorm, UncertaintyWeighting

    model = MMoE(MMoEConfig.tiny())
    batches = TensorBatcher(train, 256, shuffle=True)  # train: a dict[str, Tensor] of rows
    fit(model, batches, weighting=UncertaintyWeighting(model.config.num_tasks))
    # or GradNorm, which needs the layer every task shares:
    fit(model, batches, weighting=GradNorm(model.config.num_tasks, model.shared_parameters()))

* :class:`FixedWeights` — Σ w_t L_t with declared weights.
* :class:`UncertaintyWeighting` — Kendall, Gal & Cipolla, "Multi-Task Learning Using Uncertainty
  to Weigh Losses for Scene Geometry and Semantics", CVPR 2018: Σ ½ exp(-s_t) L_t + ½ s_t with
  learned s_t = log σ_t².
* :class:`GradNorm` — Chen, Badrinarayanan, Lee & Rabinovich, "GradNorm: Gradient Normalization
  for Adaptive Loss Balancing in Deep Multitask Networks", ICML 2018.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import Tensor, nn

from mtrec.checks import check_float, check_int, check_tensor


def _check(losses: Tensor, num_tasks: int) -> None:
    check_tensor(losses, "losses")
    if losses.ndim != 1 or losses.shape[0] != num_tasks:
        raise ValueError(
            f"expected a ({num_tasks},) vector of per-task losses, got shape "
            f"{tuple(losses.shape)}; the model's loss(batch) must return one loss per task"
        )
    if not bool(torch.isfinite(losses.detach()).all()):
        bad = (~torch.isfinite(losses.detach())).nonzero().flatten().tolist()
        raise ValueError(
            f"the losses of tasks {bad} are NaN or infinite ({losses.detach().tolist()}); "
            "check those tasks' labels and inputs for NaN, or lower the learning rate"
        )


class FixedWeights(nn.Module):
    """Σ_t w_t L_t with fixed weights (default all 1: the plain sum)."""

    def __init__(self, weights: Sequence[float]) -> None:
        super().__init__()
        if isinstance(weights, (str, bytes)) or not hasattr(weights, "__iter__"):
            raise TypeError(f"weights must be a list of numbers, one per task, got {weights!r}")
        weights = list(weights)
        for i, value in enumerate(weights):
            check_float(value, f"weights[{i}]")
        w = torch.as_tensor(weights, dtype=torch.float32)
        if w.ndim != 1 or len(w) == 0 or bool((w < 0).any()):
            raise ValueError(f"weights must be a non-empty list of non-negatives, got {weights}")
        self.register_buffer("weights", w)

    def forward(self, losses: Tensor) -> Tensor:
        """(T,) → scalar."""
        _check(losses, len(self.weights))
        return (self.weights * losses).sum()


class UncertaintyWeighting(nn.Module):
    """Homoscedastic-uncertainty weighting (Kendall et al., CVPR 2018).

    Loss = Σ_t ½ exp(-s_t) L_t + ½ s_t, s_t = log σ_t² learned with the model (init 0, i.e. all
    weights ½). A noisy task grows σ_t and is down-weighted; the ½ s_t term stops σ_t → ∞.
    """

    def __init__(self, num_tasks: int) -> None:
        super().__init__()
        num_tasks = check_int(num_tasks, "num_tasks", min=1)
        self.log_vars = nn.Parameter(torch.zeros(num_tasks))  # s_t

    @property
    def weights(self) -> Tensor:
        """Current effective weights ½ exp(-s_t), (T,)."""
        return 0.5 * torch.exp(-self.log_vars.detach())

    def forward(self, losses: Tensor) -> Tensor:
        """(T,) → scalar."""
        _check(losses, len(self.log_vars))
        return (0.5 * torch.exp(-self.log_vars) * losses + 0.5 * self.log_vars).sum()


class GradNorm(nn.Module):
    """GradNorm (Chen et al., ICML 2018): learn w_t so each task's gradient norm at the shared
    layer tracks the average, scaled by how far behind the task's training is.

    G_t = ‖∇_W w_t L_t‖ on the shared parameters W; r_t = (L_t / L_t(0)) / mean_j(L_j / L_j(0));
    the weights minimise Σ_t |G_t − mean(G) · r_t^α| (target held constant), the model minimises
    Σ_t w_t L_t (weights held constant), and the weights are renormalised to Σ w_t = T before
    each step. Both happen inside ``forward``, so a plain ``fit`` loop trains it: the returned
    scalar's gradient w.r.t. the model is Σ w_t ∇L_t and w.r.t. w is ∇ of the GradNorm loss.

    Args:
        num_tasks: T.
        shared_parameters: W, usually the last shared layer's weights (pass them at
            construction, e.g. ``model.shared_parameters()``).
        alpha: α, the restoring-force strength (paper: 0.12 to 3; 1.5 default).
    """

    def __init__(self, num_tasks: int, shared_parameters: Iterable[Tensor], *, alpha: float = 1.5):
        super().__init__()
        num_tasks = check_int(num_tasks, "num_tasks", min=1)
        alpha = check_float(alpha, "alpha", min=0.0)
        if isinstance(shared_parameters, Tensor):
            shared_parameters = [shared_parameters]
        self.shared = [
            check_tensor(p, "shared_parameters[...]") for p in shared_parameters if p.requires_grad
        ]
        if not self.shared:
            raise ValueError("GradNorm needs the shared layer's parameters (requires_grad=True)")
        if num_tasks < 1 or alpha < 0:
            raise ValueError(f"need num_tasks >= 1 and alpha >= 0, got {num_tasks}, {alpha}")
        self.alpha = alpha
        self.task_weights = nn.Parameter(torch.ones(num_tasks))  # w_t
        self.register_buffer("initial_losses", torch.full((num_tasks,), float("nan")))

    @property
    def weights(self) -> Tensor:
        """Current w_t, (T,)."""
        return self.task_weights.detach()

    def forward(self, losses: Tensor) -> Tensor:
        """(T,) → scalar (model loss + GradNorm loss on the weights)."""
        num_tasks = len(self.task_weights)
        _check(losses, num_tasks)
        with torch.no_grad():  # renormalise: Σ w = T, all positive
            w = self.task_weights.clamp_min(1e-3)
            self.task_weights.copy_(w * num_tasks / w.sum())
            if torch.isnan(self.initial_losses).any():
                self.initial_losses.copy_(losses.detach().clamp_min(1e-8))
        if not torch.is_grad_enabled() or not losses.requires_grad:
            return (self.task_weights.detach() * losses).sum()
        norms = []
        for t in range(num_tasks):  # T backward passes through the shared layer only
            grads = torch.autograd.grad(
                losses[t], self.shared, retain_graph=True, allow_unused=True
            )
            zero = torch.zeros((), device=losses.device)
            squares = sum(((g.detach().float() ** 2).sum() for g in grads if g is not None), zero)
            norms.append(torch.sqrt(squares))
        norms_t = torch.stack(norms)  # (T,)
        grad_norms = self.task_weights * norms_t  # G_t = w_t ‖∇L_t‖ (depends on w only)
        ratios = losses.detach() / self.initial_losses
        target = (grad_norms.mean() * (ratios / ratios.mean()) ** self.alpha).detach()
        gradnorm_loss = (grad_norms - target).abs().sum()
        return (self.task_weights.detach() * losses).sum() + gradnorm_loss
