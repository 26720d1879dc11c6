"""Exercise 2: the MMoE gate: one softmax gate per task mixes the shared experts.

The student writes ``mmoe_gate(x, gate_weight, gate_bias, expert_outputs) -> (gates, mixed)``:
x (B, D_in), gate_weight (T, D_in, E), gate_bias (T, E), expert_outputs (B, E, D);
gates (B, T, E) = softmax over experts of x W_t + b_t, mixed (B, T, D) = Σ_e gates · experts.
One case takes its weights from a real :class:`mtrec.models.multitask.mmoe.MMoE`.
Reference: Ma et al., "Modeling Task Relationships in Multi-task Learning with Multi-gate
Mixture-of-Experts", KDD 2018.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from mtrec.exercises._harness import Case, run_cases


def reference_mmoe_gate(
    x: Tensor, gate_weight: Tensor, gate_bias: Tensor, expert_outputs: Tensor
) -> tuple[Tensor, Tensor]:
    """(B, T, E) gates and (B, T, D) mixed expert outputs."""
    logits = torch.einsum("bi,tie->bte", x, gate_weight) + gate_bias  # (B, T, E)
    gates = torch.softmax(logits, dim=-1)
    return gates, torch.einsum("bte,bed->btd", gates, expert_outputs)


def _softmax_over_tasks(x: Tensor, gate_weight: Tensor, gate_bias: Tensor, expert_outputs: Tensor):
    logits = torch.einsum("bi,tie->bte", x, gate_weight) + gate_bias
    gates = torch.softmax(logits, dim=1)
    return gates, torch.einsum("bte,bed->btd", gates, expert_outputs)


def _no_softmax(x: Tensor, gate_weight: Tensor, gate_bias: Tensor, expert_outputs: Tensor):
    gates = torch.einsum("bi,tie->bte", x, gate_weight) + gate_bias
    return gates, torch.einsum("bte,bed->btd", gates, expert_outputs)


def _no_bias(x: Tensor, gate_weight: Tensor, gate_bias: Tensor, expert_outputs: Tensor):
    return reference_mmoe_gate(x, gate_weight, torch.zeros_like(gate_bias), expert_outputs)


def _one_gate(x: Tensor, gate_weight: Tensor, gate_bias: Tensor, expert_outputs: Tensor):
    gates, _ = reference_mmoe_gate(x, gate_weight, gate_bias, expert_outputs)
    first = gates[:, :1].expand_as(gates)
    return first, torch.einsum("bte,bed->btd", first, expert_outputs)


DIAGNOSES = (
    (_softmax_over_tasks, "the softmax must run over the experts (dim=-1), not over the tasks"),
    (_no_softmax, "apply a softmax to the gate logits so each task's weights sum to 1"),
    (_no_bias, "you left out gate_bias: logits = x @ W_t + b_t"),
    (_one_gate, "every task used task 0's gate; MMoE has one gate per task (T gates)"),
)


def _from_mmoe(seed: int) -> dict[str, Tensor]:
    """Weights of a tiny real MMoE and its own experts' outputs on a batch."""
    with torch.random.fork_rng():  # the learner's random state is left alone
        return _build_mmoe(seed)


def _build_mmoe(seed: int) -> dict[str, Tensor]:
    from mtrec.data.synthetic import random_batch
    from mtrec.models.multitask.mmoe import MMoE, MMoEConfig

    torch.manual_seed(seed)
    model = MMoE(MMoEConfig.tiny(num_tasks=2, num_experts=3)).eval()
    batch = random_batch(model.config.features, 4, num_tasks=2, seed=seed)
    with torch.no_grad():
        x = model.embedding(batch)  # (B, D_in)
        t, e = model.config.num_tasks, model.config.num_experts
        weight = model.gate.weight.view(t, e, -1).transpose(1, 2)  # (T, D_in, E)
        kwargs = {"x": x, "gate_weight": weight.contiguous(),
                  "gate_bias": model.gate.bias.view(t, e), "expert_outputs": model.experts(x)}  # fmt: skip
        torch.testing.assert_close(reference_mmoe_gate(**kwargs)[0], model.gates(batch))
    return kwargs


def cases() -> list[Case]:
    """The hidden cases (seeded)."""
    g = torch.Generator().manual_seed(1)

    def make(b: int, d_in: int, t: int, e: int, d: int) -> dict[str, Tensor]:
        return {
            "x": torch.randn(b, d_in, generator=g),
            "gate_weight": torch.randn(t, d_in, e, generator=g),
            "gate_bias": torch.randn(t, e, generator=g),
            "expert_outputs": torch.randn(b, e, d, generator=g),
        }

    specs = [
        ("1 task, 2 experts", make(3, 4, 1, 2, 5),
         "logits = x @ gate_weight[t] + gate_bias[t]; gates = softmax over experts"),
        ("2 tasks, 4 experts", make(5, 6, 2, 4, 3),
         "torch.einsum('bi,tie->bte', x, gate_weight) gives all T gates at once"),
        ("3 tasks, 8 experts, D=1", make(2, 3, 3, 8, 1),
         "mixed = torch.einsum('bte,bed->btd', gates, expert_outputs)"),
        ("weights from a real mtrec MMoE", _from_mmoe(3),
         "same formula; this case uses mtrec.models.multitask.mmoe.MMoE's own gate and experts"),
    ]  # fmt: skip
    return [Case(name, kw, reference_mmoe_gate(**kw), hint, DIAGNOSES) for name, kw, hint in specs]


def check_mmoe_gate(student: Callable[..., tuple[Tensor, Tensor]]) -> bool:
    """Check ``student(x, gate_weight, gate_bias, expert_outputs) -> (gates, mixed)``."""
    return run_cases("the MMoE gate", student, cases())
