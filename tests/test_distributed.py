"""``fit`` under ``torchrun``: 2 CPU processes (gloo) train the same model as 1 process.

The test launches this very file with ``python -m torch.distributed.run --nproc_per_node 2`` on a
free loopback port. Each rank trains on a strided half of every batch; DistributedDataParallel
averages the gradients, so the parameters, the validation curve and the test metrics must match
a single-process run of the same seed up to floating-point reordering. The per-rank train losses
are half-batch losses; their mean over ranks equals the single-process batch loss.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from mtrec.data import TensorBatcher
from mtrec.eval.click import evaluate
from mtrec.eval.metrics import auc
from mtrec.train import fit

EPOCHS = 4
BATCH = 64  # even, and N a multiple of it, so both ranks get equal shards of every batch


class TwoTaskMLP(nn.Module):
    """A small two-task click model: (B, 8) features → (B, 2) logits."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = self.net(batch["x"])
        per = nn.functional.binary_cross_entropy_with_logits(
            logits, batch["labels"], reduction="none"
        )
        return per.mean(dim=0)  # (T,)

    def predict(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.sigmoid(self.net(batch["x"]))


def _data(n: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    noise = 0.5 * torch.randn(n, 2, generator=g)
    labels = torch.stack([x[:, 0] + x[:, 1], x[:, 2] - x[:, 3]], dim=1) + noise > 0
    return {"x": x, "labels": labels.float(), "scenario_ids": (x[:, 4] > 0).long()}


def _train() -> tuple[nn.Module, list[dict[str, float]], dict[str, torch.Tensor]]:
    """Train with fixed seeds; identical code runs in the single and the multi-process case."""
    torch.manual_seed(0)
    model = TwoTaskMLP()
    train, valid = _data(1024, seed=1), _data(512, seed=2)

    def valid_fn(m: nn.Module) -> float:
        return auc(valid["labels"][:, 0].numpy(), m.predict(valid)[:, 0].numpy())

    batches = TensorBatcher(train, BATCH, shuffle=True, seed=3)
    history = fit(model, batches, valid_fn=valid_fn, epochs=EPOCHS, lr=0.02, patience=EPOCHS,
                  device="cpu", progress=False)  # fmt: skip
    return model, history.epochs, valid


def _metrics(model: nn.Module) -> dict[str, float]:
    test = _data(512, seed=4)
    table = evaluate(model, TensorBatcher(test, 128), task_names=["a", "b"])
    table = table[table.scenario == "all"]
    return {f"{r.task}/{r.metric}": float(r.value) for r in table.itertuples()}


def _worker(out_dir: Path) -> None:
    """Entry point of each torchrun rank."""
    import torch.distributed as dist

    torch.set_num_threads(1)
    model, epochs, _ = _train()
    rank = dist.get_rank()
    assert dist.get_world_size() == 2, dist.get_world_size()
    (out_dir / f"rank{rank}.json").write_text(json.dumps({"epochs": epochs}))
    if rank == 0:
        torch.save(model.state_dict(), out_dir / "state.pt")
        (out_dir / "metrics.json").write_text(json.dumps(_metrics(model)))
    dist.barrier()
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_two_cpu_processes_match_one(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo", MTREC_OFFLINE="1",
               PYTHONPATH=str(Path(__file__).resolve().parents[1]))  # fmt: skip
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--nnodes", "1",
           "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
           str(Path(__file__).resolve()), str(tmp_path)]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, f"torchrun failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"

    torch.set_num_threads(1)
    single, single_epochs, _ = _train()
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text())["epochs"] for r in (0, 1)]

    # the same weights after EPOCHS epochs of Adam
    state = torch.load(tmp_path / "state.pt")
    for name, value in single.state_dict().items():
        torch.testing.assert_close(state[name], value, rtol=1e-4, atol=1e-5, msg=name)
    # the same validation curve on every rank, and the mean of the ranks' half-batch losses
    # equals the single-process batch loss
    for epoch, one in enumerate(single_epochs):
        for rank_epochs in ranks:
            assert rank_epochs[epoch]["valid"] == pytest.approx(one["valid"], abs=1e-6)
        mean_loss = (ranks[0][epoch]["train_loss"] + ranks[1][epoch]["train_loss"]) / 2
        assert mean_loss == pytest.approx(one["train_loss"], rel=1e-5)
    # and the same test metrics
    multi = json.loads((tmp_path / "metrics.json").read_text())
    reference = _metrics(single)
    assert multi.keys() == reference.keys()
    for key, value in reference.items():
        assert multi[key] == pytest.approx(value, abs=1e-5), key
    assert reference["a/auc"] > 0.8  # the model learned something (chance is 0.5)


if __name__ == "__main__":
    _worker(Path(sys.argv[1]))
