"""Scenario-specific parameters, vectorised: each row runs through its own scenario's weights.

Rows are *grouped* by scenario (:func:`grouped_matmul`): the weights of each scenario present
in the batch are formed once and applied to that scenario's rows with one batched matmul, so no
row runs through another scenario's tower and the cost grows with the scenarios present in a
batch, not with every scenario that exists. Scenario ids outside ``0..S-1`` raise
``ValueError`` (:func:`check_scenario_ids`; no silent fallback): a new scenario needs
retraining, an explicit mapping onto a known one, or ``add_scenario`` + ``mtrec.train.transfer``.

Adding a scenario (``add_scenario``) appends one row to every stacked (S, ...) parameter, so the
trained scenarios' rows — and their outputs — stay bit-identical; the new row starts from the
shared weights alone (STAR's ``W_p = 1, b_p = 0``), the mean of the trained rows, or a copy of
the nearest trained scenario (:func:`new_scenario_row`). It replaces those parameters: build the
optimizer after adding.

* :class:`ScenarioRouter`: one MLP per scenario (stacked like :class:`mtrec.nn.layers.BatchedMLP`).
* :class:`StarLinear`: STAR's star-topology layer, ``x (W ⊙ W_p) + b + b_p``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mtrec.checks import check_ids, checked_once, is_tracing
from mtrec.nn.layers import BatchedMLP


def batch_scenario_ids(batch: Mapping[str, Tensor], num_scenarios: int) -> Tensor:
    """``batch["scenario_ids"]`` as long (B,), checked by :func:`check_scenario_ids`.

    A batch of a :class:`mtrec.data.TensorBatcher` is checked once over the whole data
    (:func:`mtrec.checks.checked_once`), then only its shape is read on each step.
    """
    if "scenario_ids" not in batch:
        raise KeyError(f"batch needs 'scenario_ids' of shape (B,); it has {sorted(batch)}")
    ids = batch["scenario_ids"]
    if checked_once(batch, ("scenario_ids", num_scenarios),
                    lambda data: check_scenario_ids(data["scenario_ids"], num_scenarios)):  # fmt: skip
        if not isinstance(ids, Tensor) or ids.ndim != 1:
            return check_scenario_ids(ids, num_scenarios)  # the clear error
        return ids.long()
    return check_scenario_ids(ids, num_scenarios)


def check_scenario_ids(scenario_ids: Tensor, num_scenarios: int) -> Tensor:
    """Return ``scenario_ids`` as long (B,); raise ValueError when any id is outside 0..S-1.

    Float ids are accepted only when whole numbers (:func:`mtrec.checks.check_ids`).
    """
    if is_tracing():  # torch.export / compile: no data to check; the eager call checked it
        return scenario_ids.long()
    ids = check_ids(scenario_ids, "scenario_ids")
    if ids.ndim != 1:
        raise ValueError(f"scenario_ids must be (B,), got shape {tuple(ids.shape)}")
    if ids.numel():
        low, high = int(ids.min()), int(ids.max())
        if low < 0 or high >= num_scenarios:
            bad = ids[(ids < 0) | (ids >= num_scenarios)].unique()[:5].tolist()
            if low < 0:
                fix = (
                    "scenario ids start at 0; map unknown or missing scenarios (e.g. -1) onto a "
                    "known id (e.g. with a ScenarioClassifier) or drop those rows"
                )
            else:
                fix = (
                    "map new scenarios onto a known id (e.g. with a ScenarioClassifier), add one "
                    "with the model's add_scenario (mtrec.train.transfer), or retrain with "
                    f"num_scenarios > {high}"
                )
            raise ValueError(
                f"scenario ids {bad} are outside the trained range 0..{num_scenarios - 1}; {fix}"
            )
    return ids


SCENARIO_INITS = ("shared", "mean", "nearest")


def new_scenario_row(
    table: Tensor, init: str, *, nearest: int | None = None, shared: Tensor | None = None
) -> Tensor:
    """The row (...) a new scenario starts from in a per-scenario ``table`` (S, ...).

    Args:
        table: (S, ...) trained rows.
        init: "shared" (the neutral value ``shared``: the shared weights alone), "mean" (mean of
            the S trained rows) or "nearest" (a copy of row ``nearest``).
        nearest: the trained scenario to copy (required by, and only used with, "nearest").
        shared: (...) the neutral row (e.g. ones for a multiplicative W_p, zeros for b_p).

    Returns:
        (...) a new tensor (detached from ``table``).
    """
    check_scenario_init(init, nearest, table.shape[0], has_shared=shared is not None)
    if init == "shared":
        return shared.detach().clone().to(table)  # type: ignore[union-attr]
    if init == "mean":
        return table.detach().mean(dim=0)
    return table.detach()[nearest].clone()


def check_scenario_init(
    init: str, nearest: int | None, num_scenarios: int, *, has_shared: bool = True
) -> None:
    """Raise ValueError unless ``init`` is known and ``nearest`` is a trained id exactly when needed."""
    allowed = SCENARIO_INITS if has_shared else ("mean", "nearest")
    if init not in allowed:
        extra = "" if has_shared else " (this module has no shared weights to start from)"
        raise ValueError(f"init must be one of {allowed}{extra}, got {init!r}")
    if init == "nearest" and (nearest is None or not 0 <= nearest < num_scenarios):
        raise ValueError(
            f"init='nearest' needs nearest=<a trained scenario id in 0..{num_scenarios - 1}>, got "
            f"{nearest!r}; pick it with mtrec.train.transfer.nearest_scenario(profile, profiles)"
        )
    if init != "nearest" and nearest is not None:
        raise ValueError(f"nearest={nearest} is only used with init='nearest', got init={init!r}")


def check_new_scenario_id(scenario_id: int | None, num_scenarios: int) -> int:
    """The id a new scenario gets (always S); raise when ``scenario_id`` names a trained one."""
    if scenario_id is not None and scenario_id != num_scenarios:
        known = "already exists" if 0 <= scenario_id < num_scenarios else "is not the next id"
        raise ValueError(
            f"scenario id {scenario_id} {known} (trained ids 0..{num_scenarios - 1}); a new "
            f"scenario gets the next id, {num_scenarios}: omit scenario_id or pass {num_scenarios}"
        )
    return num_scenarios


def append_row(param: nn.Parameter, row: Tensor) -> nn.Parameter:
    """A new (S + 1, ...) parameter: ``param``'s S rows (values unchanged) then ``row`` (...)."""
    grown = torch.cat([param.detach(), row.to(param).unsqueeze(0)])  # (S + 1, ...)
    return nn.Parameter(grown, requires_grad=param.requires_grad)


@dataclass(frozen=True)
class ScenarioGroups:
    """Where each row of a batch goes when rows are grouped by scenario (computed once per batch).

    ``present``: (S',) sorted scenario ids in the batch; ``flat``: (B,) each row's position in
    the zero-padded (S'·M, ...) block, M = ``rows`` = the largest group. A model whose layers all
    group by the same ids (STAR's star layers) computes this once per forward and passes it to
    every layer, instead of sorting the ids again in each one.
    """

    present: Tensor
    flat: Tensor
    rows: int

    @classmethod
    def of(cls, ids: Tensor) -> ScenarioGroups:
        """Group the (B,) long ``ids`` (B ≥ 1)."""
        present, group, counts = torch.unique(ids, return_inverse=True, return_counts=True)
        order = torch.argsort(group, stable=True)  # rows sorted by group
        starts = torch.cumsum(counts, 0) - counts  # (S',) first sorted position of each group
        slot = torch.empty_like(group)
        slot[order] = torch.arange(len(ids), device=ids.device) - starts[group[order]]  # (B,)
        m = int(counts.max())
        return cls(present, group * m + slot, m)

    def matmul(self, x: Tensor, weights: Tensor) -> Tensor:
        """Row b of the result is ``x[b] @ weights[g(b)]``, g(b) the group of row b.

        Args:
            x: (B, D_in) rows.
            weights: (S', D_in, D_out), one matrix per present scenario (``present``'s order).
        """
        # index_copy / index_select rather than advanced indexing: their backward passes are an
        # index_select / index_add, far cheaper than the accumulating index_put of x[i, j].
        s, m = len(self.present), self.rows
        padded = x.new_zeros(s * m, x.shape[1]).index_copy(0, self.flat, x)  # (S'·M, D_in)
        out = torch.bmm(padded.view(s, m, -1), weights)  # (S', M, D_out)
        return out.reshape(-1, out.shape[-1]).index_select(0, self.flat)  # (B, D_out)


def grouped_matmul(
    x: Tensor,
    ids: Tensor,
    weight_of: Callable[[Tensor], Tensor],
    groups: ScenarioGroups | None = None,
) -> Tensor:
    """Row b of the result is ``x[b] @ W[ids[b]]``: each row through its own scenario's weight.

    Rows are grouped by scenario into a zero-padded (S', M, D_in) block (S' scenarios present in
    the batch, M rows in the largest group) and multiplied by the S' weights in one ``bmm``, so
    a weight matrix is built once per scenario present, never once per row, and the work does
    not grow with the number of scenarios S that are absent from the batch.

    Args:
        x: (B, D_in) rows.
        ids: (B,) long scenario ids.
        weight_of: maps the (S',) sorted present ids to their (S', D_in, D_out) weights (use
            ``index_select``, whose backward is a cheap ``index_add``).
        groups: ``ScenarioGroups.of(ids)`` when the caller already has it (same result).

    Returns:
        (B, D_out); (0, D_out) for an empty batch.
    """
    if ids.numel() == 0:  # no row, no scenario present: an empty result of the right width
        return x.new_zeros(0, weight_of(ids).shape[-1])
    if groups is None:
        groups = ScenarioGroups.of(ids)
    elif groups.flat.shape != ids.shape:
        raise ValueError(
            f"groups were computed for {len(groups.flat)} rows, ids has {len(ids)}: pass "
            "ScenarioGroups.of(ids) of these very ids (or None)"
        )
    return groups.matmul(x, weight_of(groups.present))


def select_scenarios(table: Tensor, present: Tensor) -> Tensor:
    """Rows ``present`` (sorted, unique) of a per-scenario ``table`` (S, ...).

    When every scenario is present the table itself is returned (no copy, and its gradient is
    written directly instead of being scattered back); otherwise an ``index_select``.
    """
    return table if len(present) == table.shape[0] else table.index_select(0, present)


class ScenarioRouter(BatchedMLP):
    """One MLP per scenario, each row run through its own scenario's MLP only.

    The parameters are a :class:`~mtrec.nn.layers.BatchedMLP` of S members (stacked
    (S, D_in, D_out) weights per layer; ``member(p)`` is scenario p's MLP as ``nn.Sequential``).
    Only ``forward`` differs: instead of every row through every MLP, rows are grouped by
    scenario and each group meets its own scenario's weights in one batched matmul
    (:func:`grouped_matmul`), so the cost is about B · D_in · D_out per layer for any S.

    Args:
        num_scenarios: S.
        in_dim: D_in.
        hidden: hidden widths (ReLU after each).
        out_dim: width of the final plain linear layer.
    """

    def __init__(
        self, num_scenarios: int, in_dim: int, hidden: Sequence[int], out_dim: int
    ) -> None:
        if num_scenarios < 1:
            raise ValueError(f"num_scenarios must be >= 1, got {num_scenarios}")
        super().__init__(num_scenarios, in_dim, hidden, out_dim)
        self.num_scenarios = num_scenarios

    def forward(self, x: Tensor, scenario_ids: Tensor) -> Tensor:  # type: ignore[override]
        """x (B, D_in), scenario_ids (B,) → (B, out_dim)."""
        ids = check_scenario_ids(scenario_ids, self.num_scenarios)
        h, last = x, len(self.weights) - 1
        groups = ScenarioGroups.of(ids) if len(ids) else None  # sorted once for every layer
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = grouped_matmul(h, ids, lambda present, w=w: select_scenarios(w, present), groups)
            h = h + b.index_select(0, ids)  # (B, D_out)
            if i < last:
                h = F.relu_(h)  # in place on the fresh sum
        return h

    def tower(self, scenario: int) -> nn.Sequential:
        """Scenario ``scenario``'s MLP as a plain ``nn.Sequential`` (copies, for checks)."""
        return self.member(scenario)

    def add_scenario(
        self, init: str = "mean", *, nearest: int | None = None, scenario_id: int | None = None
    ) -> int:
        """Append a tower for a new scenario; return its id (S). The S trained towers are unchanged.

        Args:
            init: "mean" (mean of the trained towers' weights) or "nearest" (a copy of tower
                ``nearest``); "shared" is refused: the towers share no weights.
            nearest: the trained scenario to copy with init="nearest".
            scenario_id: optional check: must be S, the next id.
        """
        new_id = check_new_scenario_id(scenario_id, self.num_scenarios)
        check_scenario_init(init, nearest, self.num_scenarios, has_shared=False)
        for params in (self.weights, self.biases):
            for i, p in enumerate(params):  # (S, D_in, D_out) / (S, D_out) → S + 1 rows
                params[i] = append_row(p, new_scenario_row(p, init, nearest=nearest))
        self.num = self.num_scenarios = new_id + 1
        return new_id

    def scenario_parameters(self) -> list[nn.Parameter]:
        """The stacked (S, ...) parameters: row p belongs to scenario p alone."""
        return [*self.weights, *self.biases]


class StarLinear(nn.Module):
    """y = x (W ⊙ W_p) + b + b_p for each row's scenario p (grouped by scenario, one bmm)."""

    def __init__(self, num_scenarios: int, in_dim: int, out_dim: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(in_dim)
        self.weight = nn.Parameter(torch.empty(in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(out_dim))
        self.weight_p = nn.Parameter(torch.ones(num_scenarios, in_dim, out_dim))  # starts = W
        self.bias_p = nn.Parameter(torch.zeros(num_scenarios, out_dim))

    def forward(self, x: Tensor, ids: Tensor, groups: ScenarioGroups | None = None) -> Tensor:
        """x (B, D_in), ids (B,) → (B, D_out); ``groups``: ``ScenarioGroups.of(ids)``, if known."""
        out = grouped_matmul(
            x, ids, lambda present: self.weight * select_scenarios(self.weight_p, present), groups
        )  # (B, D_out)
        return out + self.bias + self.bias_p.index_select(0, ids)  # (B, D_out)

    def scenario_weight(self, scenario: int) -> Tensor:
        """(D_in, D_out) effective weight W ⊙ W_p of one scenario."""
        return self.weight * self.weight_p[scenario]

    def add_scenario(self, init: str = "shared", *, nearest: int | None = None) -> int:
        """Append W_p, b_p rows for a new scenario ("shared": 1 and 0); return its id (S)."""
        new_id = self.weight_p.shape[0]
        w_row = new_scenario_row(self.weight_p, init, nearest=nearest, shared=torch.ones(1))
        b_row = new_scenario_row(self.bias_p, init, nearest=nearest, shared=torch.zeros(1))
        self.weight_p = append_row(self.weight_p, w_row.expand_as(self.weight_p[0]))
        self.bias_p = append_row(self.bias_p, b_row.expand_as(self.bias_p[0]))
        return new_id
