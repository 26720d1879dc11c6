"""Scenario transfer: add a scenario to a trained multi-scenario model, then adapt it from few rows.

A trained model (STAR, a multi-scenario Shared-Bottom, or any model with ``add_scenario``,
``scenario_parameters`` and ``config.num_scenarios``/``config.num_tasks``) gets a new scenario
without retraining the others:

1. **Add** (:func:`add_scenario`): one more row in every stacked (S, ...) per-scenario parameter,
   started from the shared weights ("shared"), the trained scenarios' mean ("mean") or the
   trained scenario whose *profile* (e.g. the mean MiniLM embedding of its item texts) is most
   similar ("nearest", :func:`nearest_scenario`). With no labelled row this is the zero-shot
   model; the trained scenarios' outputs stay bit-identical.
2. **Adapt** (:func:`prepare_adaptation`, then the generic ``mtrec.train.fit``) on n labelled
   rows of the new scenario with one of :data:`STRATEGIES`:

   * ``"new"``: train only the new scenario's rows of the stacked tensors. Everything else is
     frozen (``requires_grad=False``) and a gradient hook zeroes the other scenarios' rows of the
     stacked tensors, so with a fresh Adam (no weight decay) they stay bit-identical;
   * ``"adapter"``: freeze the whole model and train a small residual MLP (:class:`Adapter`) on
     the input embedding whose logits are added for the new scenario's rows only (zero-initialised
     output: it starts as the unadapted model);
   * ``"all"``: fine-tune every parameter (the other scenarios drift).

   In every strategy the batch-norm statistics stay frozen at the trained values (a batch of 16
   rows of one scenario would otherwise overwrite the running statistics every scenario shares).

Shapes: B rows, T tasks, S scenarios, D profile width. Batches are ``dict[str, Tensor]`` with the
model's feature keys, "scenario_ids" (B,) long and "labels" (B, T) float.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mtrec.checks import check_choice, check_finite, check_int, check_tensor
from mtrec.nn.layers import MLP
from mtrec.nn.losses import check_labels, masked_bce

log = logging.getLogger(__name__)

STRATEGIES = ("new", "adapter", "all")
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def scenario_similarity(profile: Tensor, profiles: Tensor) -> Tensor:
    """Cosine similarity of a new scenario's profile (D,) to each trained one's (S, D) → (S,)."""
    check_tensor(profile, "profile")
    check_tensor(profiles, "profiles")
    if profile.ndim != 1 or profiles.ndim != 2 or profiles.shape[1] != profile.shape[0]:
        raise ValueError(
            f"profile must be (D,) and profiles (S, D) with the same D, got {tuple(profile.shape)} "
            f"and {tuple(profiles.shape)}; pass one profile vector per trained scenario"
        )
    if profiles.shape[0] == 0:
        raise ValueError("profiles is empty (0 scenarios); pass one profile per trained scenario")
    check_finite(profile.float(), "profile")
    check_finite(profiles.float(), "profiles")
    return F.cosine_similarity(profiles.float(), profile.float().unsqueeze(0), dim=1)  # (S,)


def nearest_scenario(profile: Tensor, profiles: Tensor) -> int:
    """Id of the trained scenario whose profile (S, D) is most cosine-similar to ``profile`` (D,)."""
    return int(scenario_similarity(profile, profiles).argmax())


def add_scenario(
    model: nn.Module,
    *,
    name: str,
    names: Sequence[str],
    init: str = "nearest",
    profile: Tensor | None = None,
    profiles: Tensor | None = None,
) -> int:
    """Add scenario ``name`` to a trained ``model``; return its id (the zero-shot path).

    Args:
        model: a trained multi-scenario model with ``add_scenario``.
        name: the new scenario's name; must not be one of ``names``.
        names: the S trained scenarios' names, in id order.
        init: "shared", "mean" or "nearest" (see the model's ``add_scenario``).
        profile: (D,) the new scenario's profile (e.g. mean text embedding); "nearest" only.
        profiles: (S, D) the trained scenarios' profiles, in id order; "nearest" only.
    """
    if not hasattr(model, "add_scenario"):
        raise TypeError(f"{type(model).__name__} has no add_scenario(); use STAR or SharedBottom")
    num = model.config.num_scenarios
    if len(names) != num:
        raise ValueError(f"names must list the model's {num} trained scenarios, got {len(names)}")
    if name in names:
        raise ValueError(
            f"scenario {name!r} already exists (id {list(names).index(name)} of {list(names)}); "
            "adapt it by its id, or give the new scenario a new name"
        )
    check_choice(init, "init", ("shared", "mean", "nearest"))
    nearest = None
    if init == "nearest":
        if profile is None or profiles is None:
            raise ValueError(
                "init='nearest' needs profile (D,) for the new scenario and profiles (S, D) for "
                "the trained ones (e.g. mean MiniLM embeddings of their item texts)"
            )
        if profiles.shape[0] != num:
            raise ValueError(f"profiles must be ({num}, D), got {tuple(profiles.shape)}")
        nearest = nearest_scenario(profile, profiles)
        log.debug("new scenario %r starts from the nearest trained one, %r", name, names[nearest])
    return model.add_scenario(init, nearest=nearest)


def check_rows(rows: dict[str, Tensor], *, scenario: int, num_tasks: int, strategy: str) -> int:
    """Validate labelled adaptation rows of one scenario; return their number N (>= 1).

    ``rows``: "labels" (N, T) and "scenario_ids" (N,), every id equal to ``scenario``.
    """
    scenario = check_int(scenario, "scenario", min=0)
    if not isinstance(rows, dict):
        raise TypeError(f"rows must be a dict[str, Tensor] batch, got {type(rows).__name__}")
    if "scenario_ids" not in rows or "labels" not in rows:
        raise KeyError(f"adaptation rows need 'scenario_ids' and 'labels', got keys {sorted(rows)}")
    n = len(rows["scenario_ids"])
    if n == 0:
        raise ValueError(
            f"strategy {strategy!r} trains on labelled rows of the new scenario, but got 0 rows; "
            "with no labels use the zero-shot model (add_scenario with init='nearest') as it is"
        )
    labels = check_labels(rows, num_tasks)
    if len(labels) != n:
        raise ValueError(f"labels have {len(labels)} rows but scenario_ids {n}; pass aligned rows")
    other = rows["scenario_ids"][rows["scenario_ids"] != scenario].unique()[:5].tolist()
    if other:
        raise ValueError(
            f"adaptation rows must all be of the new scenario {scenario}, got ids {other} too; "
            f"select rows with batch['scenario_ids'] == {scenario}"
        )
    return n


class Adapter(nn.Module):
    """Residual logits for one scenario: MLP(embedding) (B, D_in) → (B, T), zero at the start."""

    def __init__(self, in_dim: int, num_tasks: int, hidden: Sequence[int] = (16,)) -> None:
        super().__init__()
        self.mlp = MLP(in_dim, hidden, num_tasks)
        last = [m for m in self.mlp.modules() if isinstance(m, nn.Linear)][-1]
        nn.init.zeros_(last.weight)  # the adapted model starts as the unadapted one
        nn.init.zeros_(last.bias)

    def forward(self, x: Tensor) -> Tensor:
        """x (B, D_in) → (B, T) logit corrections."""
        return self.mlp(x)


class Adapting(nn.Module):
    """A trained model prepared for adaptation to scenario ``scenario`` (see the module docstring).

    Behaves like the model for ``fit`` and evaluation (``forward`` → (B, T) logits, ``loss``,
    ``predict``); batch-norm layers stay in eval mode even under ``train()``. Call
    :meth:`release` afterwards to restore ``requires_grad`` and remove the gradient hooks.
    """

    def __init__(
        self, model: nn.Module, *, scenario: int, strategy: str, hidden: Sequence[int] = (16,)
    ) -> None:
        super().__init__()
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
        scenario = check_int(scenario, "scenario")
        if not 0 <= scenario < model.config.num_scenarios:
            raise ValueError(
                f"scenario {scenario} is not in the model (ids 0..{model.config.num_scenarios - 1})"
                "; add it first with add_scenario"
            )
        self.model, self.scenario, self.strategy = model, scenario, strategy
        self.num_tasks = model.config.num_tasks
        self._requires = {p: p.requires_grad for p in model.parameters()}
        self._hooks = []
        self.adapter = None
        if strategy == "adapter":
            if not hasattr(model, "embedding"):
                raise TypeError(f"{type(model).__name__} has no .embedding for the adapter's input")
            self.adapter = Adapter(model.embedding.out_dim, self.num_tasks, hidden)
        stacked = {id(p) for p in model.scenario_parameters()} if strategy == "new" else set()
        for p in model.parameters():
            p.requires_grad_(strategy == "all" or id(p) in stacked)
            if id(p) in stacked:
                self._hooks.append(p.register_hook(_keep_row(p.shape, scenario)))
        self.train(model.training)

    def train(self, mode: bool = True) -> Adapting:
        super().train(mode)
        for m in self.model.modules():
            if isinstance(m, _NORMS):
                m.eval()  # shared running statistics stay as trained
        return self

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        """Feature keys + "scenario_ids" (B,) → (B, T) logits (+ the adapter's on the new rows)."""
        logits = self.model(batch)  # (B, T)
        if self.adapter is None:
            return logits
        rows = (batch["scenario_ids"] == self.scenario).nonzero().squeeze(1)  # (B',)
        x = self.model.embedding({k: v[rows] for k, v in batch.items()})  # (B', D_in)
        return logits.index_add(0, rows, self.adapter(x).to(logits.dtype))

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """(T,) per-task BCE over labelled rows."""
        return masked_bce(self(batch), check_labels(batch, self.num_tasks))

    @torch.no_grad()
    def predict(self, batch: dict[str, Tensor]) -> Tensor:
        """(B, T) probabilities."""
        return torch.sigmoid(self(batch))

    def release(self) -> nn.Module:
        """Remove the gradient hooks, restore ``requires_grad``; return self (adapter kept)."""
        for hook in self._hooks:
            hook.remove()
        self._hooks.clear()
        for p, flag in self._requires.items():
            p.requires_grad_(flag)
        return self


def _keep_row(shape: torch.Size, scenario: int):
    """A gradient hook that zeroes every row of an (S, ...) gradient except row ``scenario``."""
    mask = torch.zeros(shape[0], *([1] * (len(shape) - 1)))  # (S, 1, ..., 1)
    mask[scenario] = 1.0
    return lambda grad: grad * mask.to(grad)


def prepare_adaptation(
    model: nn.Module,
    rows: dict[str, Tensor],
    *,
    scenario: int,
    strategy: str = "new",
    hidden: Sequence[int] = (16,),
) -> Adapting:
    """Check the n labelled ``rows`` of ``scenario`` and return ``model`` ready for ``fit``.

    Example::

        new = add_scenario(star, name="Jackets", names=known, profile=p, profiles=ps)
        adapting = prepare_adaptation(star, rows, scenario=new, strategy="new")
        fit(adapting, TensorBatcher(rows, 64, shuffle=True), valid_fn=..., lr=1e-2)  # no decay

    Args:
        model: the model after ``add_scenario``.
        rows: labelled rows of the new scenario ("labels" (N, T), "scenario_ids" (N,)).
        scenario: the new scenario's id.
        strategy: "new", "adapter" or "all" (:data:`STRATEGIES`).
        hidden: the adapter's hidden widths ("adapter" only).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    check_rows(rows, scenario=scenario, num_tasks=model.config.num_tasks, strategy=strategy)
    return Adapting(model, scenario=scenario, strategy=strategy, hidden=hidden)
