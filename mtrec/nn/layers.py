"""Shared building blocks: an MLP and the embedding module built from declared features."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mtrec.checks import (
    check_finite,
    check_ids,
    check_int,
    check_probability,
    check_tensor,
    check_widths,
    checked_once,
    is_tracing,
)
from mtrec.data.schema import (
    DenseFeature,
    Feature,
    PretrainedFeature,
    SequenceFeature,
    SparseFeature,
    TextFeature,
)


class MLP(nn.Module):
    """Linear → (LayerNorm) → activation → dropout, repeated; optional linear output layer.

    Args:
        in_dim: input width D_in.
        hidden: widths of the hidden layers.
        out_dim: width of a final plain linear layer (None: end after the last hidden layer).
        dropout: dropout after each hidden activation.
        norm: put a LayerNorm before each activation.
    """

    def __init__(
        self,
        in_dim: int,
        hidden: Sequence[int],
        out_dim: int | None = None,
        *,
        dropout: float = 0.0,
        norm: bool = False,
        activation: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        check_int(in_dim, "in_dim", min=1)
        hidden = check_widths(hidden, "hidden")
        if out_dim is not None:
            check_int(out_dim, "out_dim", min=1)
        check_probability(dropout, "dropout")
        layers: list[nn.Module] = []
        width = in_dim
        for h in hidden:
            layers.append(nn.Linear(width, h))
            if norm:
                layers.append(nn.LayerNorm(h))
            # ReLU in place on the fresh linear (or LayerNorm) output: same values, no new buffer
            layers.append(nn.ReLU(inplace=True) if activation is nn.ReLU else activation())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        if out_dim is not None:
            layers.append(nn.Linear(width, out_dim))
            width = out_dim
        self.net = nn.Sequential(*layers)
        self.out_dim = width

    def forward(self, x: Tensor) -> Tensor:
        """(..., D_in) → (..., out_dim)."""
        return self.net(x)


class _Lookup(torch.autograd.Function):
    """``nn.Embedding``'s lookup, its weight gradient summed by one ``index_add_``.

    The same gradient, bit for bit, as ``F.embedding``'s backward: rows are added in batch order
    and the padding row (if any) gets none. On CPU that backward adds one row at a time through
    the operator dispatcher, 1.5-3x slower than ``index_add_`` at a few thousand ids.
    """

    @staticmethod
    def forward(ctx, weight: Tensor, ids: Tensor, padding_idx: int | None) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(ids)
        ctx.rows, ctx.padding_idx = weight.shape[0], padding_idx
        return weight.index_select(0, ids)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:  # type: ignore[override]
        (ids,) = ctx.saved_tensors
        # The gradient of one feature's slice of FeatureEmbedding's concatenated output is a
        # strided view; index_add_ reads a contiguous copy about twice as fast (same sums).
        grad_weight = grad.new_zeros(ctx.rows, grad.shape[-1]).index_add_(0, ids, grad.contiguous())
        if ctx.padding_idx is not None:
            grad_weight[ctx.padding_idx] = 0  # the padding row learns nothing, as in nn.Embedding
        return grad_weight, None, None


def lookup(table: nn.Embedding, ids: Tensor) -> Tensor:
    """``table(ids)``: (..., D) for ids of any shape.

    While a CPU table trains, the lookup goes through :class:`_Lookup` (same values, a faster
    backward); everywhere else (no grad, GPU, export or compile, ``max_norm``,
    ``scale_grad_by_freq``, sparse gradients) it is ``table(ids)`` itself.
    """
    weight = table.weight
    if (
        weight.device.type != "cpu"
        or not (table.training and torch.is_grad_enabled() and weight.requires_grad)
        or table.max_norm is not None
        or table.scale_grad_by_freq
        or table.sparse
        or is_tracing()
    ):
        return table(ids)
    flat = _Lookup.apply(weight, ids.reshape(-1), table.padding_idx)
    return flat.view(*ids.shape, weight.shape[1])


class FeatureEmbedding(nn.Module):
    """Embed a batch described by declared features into one flat vector per row.

    Sparse features are looked up, sequence features are looked up and pooled over non-padding
    positions (id 0 is padding), pretrained features are looked up in their (frozen) table, dense
    and text features pass through. The output concatenates them in declaration order:
    (B, ``out_dim``).
    """

    def __init__(self, features: Sequence[Feature]) -> None:
        super().__init__()
        if not features:
            raise ValueError("FeatureEmbedding needs at least one feature")
        names = [f.name for f in features]
        if len(set(names)) != len(names):
            raise ValueError(f"feature names must be unique, got {names}")
        self.features = list(features)
        self._check_key = (  # what a whole-data check of these features verifies
            "features",
            *((f.name, type(f).__name__, getattr(f, "vocab_size", None) or getattr(f, "dim", None))
              for f in self.features),
        )  # fmt: skip
        self.tables = nn.ModuleDict()
        out_dim = 0
        for f in self.features:
            if isinstance(f, (SparseFeature, SequenceFeature)):
                self.tables[f.name] = nn.Embedding(f.vocab_size, f.embed_dim, padding_idx=0)
                nn.init.normal_(self.tables[f.name].weight, std=0.05)
                with torch.no_grad():
                    self.tables[f.name].weight[0].zero_()
                out_dim += f.embed_dim
            elif isinstance(f, PretrainedFeature):
                table = f.table.detach().float().clone()
                self.tables[f.name] = nn.Embedding.from_pretrained(table, freeze=not f.trainable)
                out_dim += f.embed_dim
            elif isinstance(f, (DenseFeature, TextFeature)):
                out_dim += f.dim
            else:
                raise TypeError(f"unknown feature type {type(f).__name__} for {f.name!r}")
        self.out_dim = out_dim

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        """batch[name]: (B,) ids, (B, L) id sequences, (B,) or (B, dim) floats → (B, out_dim).

        Every input is checked here, at the edge, so every model built on this module gets the
        same errors: ids outside ``0..vocab_size-1`` and fractional float ids
        (:func:`mtrec.checks.check_ids`), NaN or infinite dense values
        (:func:`mtrec.checks.check_finite`), wrong ranks or widths, and tensors whose batch
        sizes differ. The value checks of all features are reduced to one flag and read once
        (one device sync per batch); a batch of a :class:`mtrec.data.TensorBatcher` has them
        run once over the batcher's whole data instead (:func:`mtrec.checks.checked_once`: no
        scan, no sync on later steps), and they are skipped while ``torch.export`` or
        ``torch.compile`` traces the model (no data there). An empty batch (B = 0) gives a
        (0, out_dim) output.
        """
        missing = [f.name for f in self.features if f.name not in batch]
        if missing:
            raise KeyError(f"batch lacks feature keys {missing}; it has {sorted(batch)}")
        inputs = self._checked_inputs(batch)  # every value checked before any lookup
        parts = []
        for f, x in zip(self.features, inputs):
            if isinstance(f, (SparseFeature, PretrainedFeature)):
                parts.append(lookup(self.tables[f.name], x))  # (B, D_f)
            elif isinstance(f, SequenceFeature):
                vectors = lookup(self.tables[f.name], x)  # (B, L, D_f)
                pooled = vectors.sum(dim=1)  # (B, D_f)
                if f.pooling == "mean":
                    pooled = pooled / (x != 0).sum(dim=1, keepdim=True).clamp_min(1)
                parts.append(pooled)
            else:
                parts.append(x.unsqueeze(-1) if x.ndim == 1 else x)  # (B, dim)
        return torch.cat(parts, dim=-1)

    def _checked_inputs(self, batch: dict[str, Tensor]) -> list[Tensor]:
        """Each feature's input as long ids or float values, in declaration order, checked."""
        tracing = is_tracing()
        checking = not checked_once(batch, self._check_key, self._check_whole)
        inputs, flags = [], []  # flags: 0-d bool tensors, True = a bad value somewhere
        for f in self.features:
            x, name = batch[f.name], f"feature {f.name!r}"
            if isinstance(f, (SparseFeature, PretrainedFeature, SequenceFeature)):
                ids, flag = self._ids(x, name, f.vocab_size, checking)
                want = 2 if isinstance(f, SequenceFeature) else 1
                if ids.ndim != want:
                    shape = "(B, L) id sequences padded with 0" if want == 2 else "(B,) ids"
                    hint = "" if want == 2 else "; declare a SequenceFeature for several ids a row"
                    raise ValueError(f"{name} must be {shape}, got shape {tuple(ids.shape)}{hint}")
                inputs.append(ids)
            else:
                x = check_tensor(x, name).float()
                if not (x.ndim == 2 and x.shape[1] == f.dim) and not (x.ndim == 1 and f.dim == 1):
                    want_text = "(B,) or (B, 1)" if f.dim == 1 else f"(B, {f.dim})"
                    raise ValueError(
                        f"{name} must be {want_text} floats (declared dim={f.dim}), got shape "
                        f"{tuple(x.shape)}"
                    )
                flag = ~torch.isfinite(x).all() if checking else None
                inputs.append(x)
            if flag is not None:
                flags.append(flag.to(flags[0].device) if flags else flag)
        if flags and bool(torch.stack(flags).any()):  # the one read of the value checks
            for f, x in zip(self.features, inputs):  # find the first bad feature, say why
                name = f"feature {f.name!r}"
                if isinstance(f, (DenseFeature, TextFeature)):
                    check_finite(x, name, fix="impute or drop those rows (e.g. fillna) first")
                else:
                    check_ids(x, name, f.vocab_size)
        sizes = {f.name: len(x) for f, x in zip(self.features, inputs)} if not tracing else {}
        for key in ("scenario_ids", "labels") if not tracing else ():  # the other (B, ...) keys
            if isinstance(batch.get(key), Tensor) and batch[key].ndim:
                sizes[key] = len(batch[key])
        if len(set(sizes.values())) > 1:
            raise ValueError(
                f"every tensor of a batch needs the same batch size B, got {sizes}; slice all "
                "tensors of a batch with the same rows"
            )
        return inputs

    def _check_whole(self, data: Mapping[str, Tensor]) -> None:
        """The value checks over a batcher's whole data (run once: :func:`checked_once`)."""
        self._checked_inputs({f.name: data[f.name] for f in self.features})

    @staticmethod
    def _ids(x: Tensor, name: str, vocab_size: int, checking: bool) -> tuple[Tensor, Tensor | None]:
        """``x`` as long ids and a 0-d "out of range" flag (None when not checking).

        Integer tensors are range-checked lazily (the flag is read once for the whole batch);
        anything else (float columns, lists) goes through :func:`mtrec.checks.check_ids` now.
        """
        if not checking:
            return x.long(), None
        if (
            isinstance(x, Tensor)
            and x.dtype != torch.bool
            and not (x.is_floating_point() or x.is_complex())
        ):
            ids = check_tensor(x, name).long()
            return ids, ((ids < 0) | (ids >= vocab_size)).any()
        return check_ids(x, name, vocab_size), None


class BatchedMLP(nn.Module):
    """E parallel MLPs (Linear → ReLU per hidden layer, optional final linear) in one einsum each.

    Args:
        num: E, the number of independent MLPs (experts or towers).
        in_dim: D_in.
        hidden: hidden widths (ReLU after each).
        out_dim: width of a final plain linear layer (None: end after the last hidden layer).
        dropout: dropout after each hidden activation.

    ``forward`` takes (B, D_in) — the same input for every MLP — or (B, E, D_in) — one input per
    MLP — and returns (B, E, out_dim).
    """

    def __init__(
        self,
        num: int,
        in_dim: int,
        hidden: Sequence[int],
        out_dim: int | None = None,
        *,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        check_int(num, "num", min=1)
        check_int(in_dim, "in_dim", min=1)
        hidden = check_widths(hidden, "hidden")
        if out_dim is not None:
            check_int(out_dim, "out_dim", min=1)
        check_probability(dropout, "dropout")
        if num < 1 or in_dim < 1:
            raise ValueError(f"BatchedMLP needs num >= 1 and in_dim >= 1, got {num}, {in_dim}")
        widths = [in_dim, *hidden] + ([out_dim] if out_dim is not None else [])
        if len(widths) < 2:
            raise ValueError("BatchedMLP needs at least one hidden layer or an out_dim")
        self.num, self.in_dim, self.out_dim = num, in_dim, widths[-1]
        self.num_hidden = len(hidden)
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for d_in, d_out in pairwise(widths):
            bound = 1.0 / math.sqrt(d_in)  # nn.Linear's default init, per MLP
            self.weights.append(nn.Parameter(torch.empty(num, d_in, d_out).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(num, d_out).uniform_(-bound, bound)))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        """(B, D_in) or (B, E, D_in) → (B, E, out_dim)."""
        if (
            x.ndim not in (2, 3)
            or x.shape[-1] != self.in_dim
            or (x.ndim == 3 and x.shape[1] != self.num)
        ):
            raise ValueError(
                f"BatchedMLP expects (B, {self.in_dim}) or (B, {self.num}, {self.in_dim}), "
                f"got {tuple(x.shape)}"
            )
        batch, num = x.shape[0], self.num
        # Work in the (E, B, D) layout, where each layer is one baddbmm (bias fused in) and the
        # next layer reads the previous output without a copy; return a (B, E, D) view. ReLU runs
        # in place on each product before any view is taken of it: same values, no extra buffer.
        if x.ndim == 2:  # one shared input: a single (B, D_in) @ (D_in, E·D_out) matmul
            w, b = self.weights[0], self.biases[0]
            h = self._activate(
                torch.addmm(b.reshape(1, -1), x, w.transpose(0, 1).reshape(x.shape[1], -1)), 0
            )
            h = h.view(batch, num, w.shape[2]).transpose(0, 1)  # (E, B, D_out); B may be 0
            start = 1
        else:
            h, start = x.transpose(0, 1), 0  # (E, B, D_in)
        for i in range(start, len(self.weights)):
            h = torch.baddbmm(self.biases[i].unsqueeze(1), h, self.weights[i])  # (E, B, D_out)
            h = self._activate(h, i)
        return h.transpose(0, 1)  # (B, E, D_out)

    def _activate(self, h: Tensor, layer: int) -> Tensor:
        """ReLU (in place) and dropout after hidden layer ``layer``; the output layer unchanged."""
        if layer >= self.num_hidden:
            return h
        return self.dropout(F.relu_(h))

    def member(self, index: int) -> nn.Sequential:
        """MLP number ``index`` as a plain ``nn.Sequential`` of ``nn.Linear`` (shares no memory)."""
        layers: list[nn.Module] = []
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            linear = nn.Linear(w.shape[1], w.shape[2])
            with torch.no_grad():
                linear.weight.copy_(w[index].T)
                linear.bias.copy_(b[index])
            layers.append(linear)
            if i < self.num_hidden:
                layers.append(nn.ReLU())
        return nn.Sequential(*layers)


class SmallBatchNorm1d(nn.BatchNorm1d):
    """``nn.BatchNorm1d`` that also trains on a batch of one row (or none).

    Batch statistics need at least two rows: torch refuses a one-row training batch ("Expected
    more than 1 value per channel"), which happens whenever the number of training rows leaves
    a remainder of 1 after the last full batch. For such a batch (B <= 1) this module
    normalises with the running statistics, as in eval mode, and leaves them unchanged (one row
    says nothing about the variance). Batches of two rows or more are computed exactly as by
    ``nn.BatchNorm1d``; parameters and buffers have the same names, so state dicts load either
    way.
    """

    def forward(self, x: Tensor) -> Tensor:
        """(B, D) → (B, D)."""
        if self.training and x.shape[0] <= 1 and self.running_mean is not None:
            return F.batch_norm(
                x,
                self.running_mean,
                self.running_var,
                self.weight,
                self.bias,
                training=False,
                momentum=0.0,
                eps=self.eps,
            )
        return super().forward(x)
