"""The benchmark harness: timing protocol, FLOP counts, naive baselines, rows and the command.

Correctness only: no assertion here depends on how fast anything ran (speed lives in the tables).
"""

import argparse

import pandas as pd
import pytest
import torch
from torch import nn

from mtrec import bench
from mtrec.cli import build_parser
from mtrec.data.schema import DenseFeature, SequenceFeature, SparseFeature
from mtrec.results import THROUGHPUT_COLUMNS


def test_time_steps_warms_up_then_times_each_repeat():
    calls = []
    timing = bench.time_steps(
        lambda: calls.append(1), device=torch.device("cpu"), batch_size=32, warmup=2, repeats=5
    )
    assert len(calls) == 7 and len(timing.times_ms) == 5
    assert timing.ms_p50 <= timing.ms_p90
    assert timing.samples_per_s == pytest.approx(32 / (timing.ms_p50 / 1e3))
    assert timing.peak_mem_mb > 0
    with pytest.raises(ValueError, match="repeats"):
        bench.time_steps(lambda: None, device=torch.device("cpu"), batch_size=1, repeats=0)


def test_time_steps_stops_at_the_budget_after_min_repeats():
    timing = bench.time_steps(
        lambda: None,
        device=torch.device("cpu"),
        batch_size=1,
        warmup=0,
        repeats=1000,
        budget_s=0.0,
        min_repeats=3,
    )
    assert len(timing.times_ms) == 3


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


def test_synthetic_batch_has_real_shapes_and_no_zero_ids():
    features = (
        SparseFeature("user", 10, 4),
        SequenceFeature("hist", 30, 4, max_len=7),
        DenseFeature("price"),
        DenseFeature("vec", 3),
    )
    batch = bench.synthetic_batch(features, 64, num_tasks=2)
    assert batch["user"].shape == (64,) and batch["user"].min() >= 1 and batch["user"].max() < 10
    assert batch["hist"].shape == (64, 7) and (batch["hist"][:, 0] > 0).all()
    assert (batch["hist"] == 0).any()  # padded tails
    assert batch["price"].shape == (64,) and batch["vec"].shape == (64, 3)
    assert batch["labels"].shape == (64, 2) and set(batch["labels"].unique().tolist()) <= {0, 1}
    again = bench.synthetic_batch(features, 64, num_tasks=2)
    torch.testing.assert_close(batch["vec"], again["vec"])  # fixed seed


@pytest.mark.parametrize("kind", ["mmoe", "ple"])
def test_typical_loop_baselines_train_through_a_per_sample_dataloader(kind):
    features = bench.click_features(3, vocab=20)
    torch.manual_seed(0)
    if kind == "mmoe":
        model = bench.LoopMMoE(
            features, num_experts=3, expert_hidden=(8, 4), tower_hidden=(4,), num_tasks=2
        )
    else:
        model = bench.LoopPLE(
            features,
            num_levels=2,
            num_specific=1,
            num_shared=2,
            expert_hidden=(8, 4),
            tower_hidden=(4,),
            num_tasks=2,
        )
    data = bench.synthetic_batch(features, 96, num_tasks=2)
    loader = torch.utils.data.DataLoader(bench.PerSampleDataset(data), batch_size=32)
    first = next(iter(loader))
    torch.testing.assert_close(first["f0"], data["f0"][:32])  # default collate of 32 dicts
    probs = model(first)
    assert probs.shape == (32, 2) and ((probs > 0) & (probs < 1)).all()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    assert bench.naive_train_epoch(model, loader, optimizer) == 96


def test_goal_rows_say_met_not_met_or_not_available():
    cpu = torch.device("cpu")
    assert bench._goal("g", 5, cpu, 2.5, 2.0, "")["met"] == "yes"
    assert bench._goal("g", 5, cpu, 1.5, 2.0, "")["met"] == "no"
    assert bench._goal("g", 5, cpu, 1.2, 1.5, "", lower_is_better=True)["met"] == "yes"
    assert bench._goal("g", 5, cpu, None, 2.0, "")["met"] == "not available"


class _Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(6, 2)

    def loss(self, batch):
        return nn.functional.binary_cross_entropy_with_logits(
            self.linear(batch["x"]), batch["labels"], reduction="none"
        ).mean(0)

    def predict(self, batch):
        return torch.sigmoid(self.linear(batch["x"]))


def _toy_case():
    def build(batch_size):
        return bench.Built(
            _Toy(), {"x": torch.randn(batch_size, 6), "labels": torch.ones(batch_size, 2)}
        )

    return bench.Case("toy", build, (4, 16), (4,))


def test_measure_case_gives_one_row_per_batch_and_phase():
    env = bench._environment(torch.device("cpu"), "")
    rows = bench.measure_case(
        _toy_case(),
        device=torch.device("cpu"),
        precision="fp32",
        batch_sizes=(4, 16),
        env=env,
        ceiling=10.0,
        settings=bench.Settings(warmup=1, repeats=3),
    )
    frame = pd.DataFrame(rows)
    assert set(THROUGHPUT_COLUMNS) - {"date"} <= set(frame.columns)
    assert sorted(zip(frame.batch_size, frame.phase)) == [
        (4, "inference"),
        (4, "train"),
        (16, "inference"),
        (16, "train"),
    ]
    # FLOPs come from the flop counter: a (B, 6) x (6, 2) matmul forward, 3x that to train
    assert (frame.gflops_per_s > 0).all()
    assert (frame.ceiling_fraction == frame.gflops_per_s / 10.0).all()


def test_a_missing_model_is_reported_not_available_and_never_measured(monkeypatch, tmp_path):
    def missing(batch_size):
        bench._import("mtrec.models.no_such_model")

    monkeypatch.setattr(
        bench,
        "model_cases",
        lambda: {"toy": [_toy_case()], "ghost": [bench.Case("ghost", missing, (1,), (1,))]},
    )
    rows, _goals, unavailable = bench.measure_device(
        torch.device("cpu"), ["toy", "ghost"], bench.Settings.from_quick(True)
    )
    models = {r["model"] for r in rows}
    assert {"ceiling/matmul", "ceiling/copy", "toy"} <= models and "ghost" not in models
    assert unavailable[0]["model"] == "ghost" and "not available" in unavailable[0]["reason"]
    matmul = next(r for r in rows if r["model"] == "ceiling/matmul")
    assert matmul["gflops_per_s"] > 0 and matmul["ceiling_fraction"] == pytest.approx(1.0)


def test_bench_command_parses_and_renders_the_report_only(tmp_path):
    args = build_parser().parse_args(
        [
            "bench",
            "--quick",
            "--models",
            "mmoe",
            "ple",
            "--batch-sizes",
            "8",
            "64",
            "--out",
            str(tmp_path / "results"),
        ]
    )
    assert args.quick and args.models == ["mmoe", "ple"] and args.batch_sizes == [8, 64]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["bench", "--models", "nonsense"])
    report = argparse.Namespace(**{**vars(args), "report_only": True})
    assert bench.run(report) == 0
    assert "not measured" in (tmp_path / "README.md").read_text()


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


def test_ceiling_goals_use_the_best_train_fraction():
    env = bench._environment(torch.device("cpu"), "")
    timing = bench.Timing([1.0, 2.0], 10.0, 8)
    rows = [
        bench._row(
            env,
            model="mmoe",
            precision="fp32",
            batch_size=b,
            phase="train",
            timing=timing,
            gflops=g,
            ceiling=10.0,
        )
        for b, g in ((8, 2.0), (64, 6.0))
    ]
    rows.append(
        bench._row(
            env,
            model="mmoe",
            precision="fp32",
            batch_size=64,
            phase="inference",
            timing=timing,
            gflops=9.0,
            ceiling=10.0,
        )
    )
    (goal,) = bench.ceiling_goals(rows, torch.device("cpu"))
    assert goal["measured"] == pytest.approx(0.6) and goal["met"] == "yes"
    assert "batch 64" in goal["detail"]


def test_the_attention_fast_path_is_profiled_for_fused_kernels():
    kernels = bench.fused_attention_kernels(torch.device("cpu"))
    assert all(any(op in k for op in bench.FUSED_ATTENTION_OPS) for k in kernels)
    goal = bench.fused_attention_goal(torch.device("cpu"))
    assert goal["met"] == ("yes" if kernels else "no")


def test_the_every_tower_reference_computes_what_the_router_computes():
    torch.manual_seed(0)
    routed = bench.router_built(64, num_scenarios=8)
    torch.manual_seed(0)
    every = bench.every_tower_built(64, num_scenarios=8)  # same weights, S x the work
    torch.testing.assert_close(every.predict(every.batch), routed.predict(routed.batch))
