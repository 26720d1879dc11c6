"""The Distiller: hard and soft terms, cached teacher outputs, features, ranking, bad input."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mtrec.data import TensorBatcher
from mtrec.data.schema import SparseFeature
from mtrec.models.student import StudentConfig, StudentMLP
from mtrec.nn.losses import masked_bce
from mtrec.train import fit
from mtrec.train.distill import (
    CANDIDATES,
    TEACHER_HIDDEN,
    TEACHER_LOGITS,
    DistillConfig,
    Distiller,
    response_distillation_loss,
)


# ------------------------------------------------------------------------------------ helpers
def _data(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    users = torch.randint(1, 50, (n,), generator=g)
    items = torch.randint(1, 40, (n,), generator=g)
    watch = ((users + items) % 2).float()
    like = (items % 3 == 0).float()
    return {"user_id": users, "item_id": items, "labels": torch.stack([watch, like], dim=1)}


def _teacher(tasks=("watch", "like")):
    torch.manual_seed(1)
    config = StudentConfig(
        features=(SparseFeature("user_id", 50, 16), SparseFeature("item_id", 40, 16)),
        task_names=tasks,
        hidden=(32, 24),
        dropout=0.1,
    )
    return StudentMLP(config).eval()


def _student():
    torch.manual_seed(2)
    return StudentMLP(StudentConfig.tiny())


class ItemScorer(nn.Module):
    """A tiny next-item scorer: (B,) last item → (B, I) scores over all items."""

    def __init__(self, num_items=30, dim=8):
        super().__init__()
        self.embed = nn.Embedding(num_items, dim)
        self.hidden = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, num_items)

    def forward(self, batch):
        return self.out(torch.relu(self.hidden(self.embed(batch["last_item"]))))

    def loss(self, batch):
        return F.cross_entropy(self(batch), batch["target"])

    def predict(self, batch):
        return torch.softmax(self(batch), dim=-1)


def _ranking_data(n=128, num_items=30):
    g = torch.Generator().manual_seed(3)
    last = torch.randint(0, num_items, (n,), generator=g)
    return {"last_item": last, "target": (last + 1) % num_items}


# -------------------------------------------------------------------------------- Distiller
def test_alpha_one_equals_the_hard_loss():
    batch = _data(64)
    student = _student()
    distiller = Distiller(student, _teacher(), DistillConfig(alpha=1.0), example_batch=batch)
    torch.testing.assert_close(distiller.loss(batch), student.loss(batch).sum())


def test_cached_teacher_outputs_give_the_same_loss():
    data = _data(100)
    distiller = Distiller(_student(), _teacher(), DistillConfig(alpha=0.3, temperature=3.0))
    cached = distiller.cache_teacher(data, batch_size=32)
    assert cached[TEACHER_LOGITS].shape == (100, 2)
    torch.testing.assert_close(distiller.loss(cached), distiller.loss(data))


def test_unlabelled_rows_feed_only_the_soft_term():
    """A transfer set: rows with labels withheld (NaN) count in the soft term, not the hard one."""
    data = _data(64)
    data["labels"][32:] = float("nan")  # rows 32..63 are unlabelled
    student = _student().eval()
    config = DistillConfig(alpha=0.3, temperature=2.0)
    distiller = Distiller(student, _teacher(), config, example_batch=data)
    cached = distiller.cache_teacher(data)
    logits = student(cached)  # (64, 2)
    hard = masked_bce(logits[:32], cached["labels"][:32]).sum()  # labelled rows only
    soft = response_distillation_loss(logits, cached[TEACHER_LOGITS], temperature=2.0).sum()
    torch.testing.assert_close(distiller.loss(cached), 0.3 * hard + 0.7 * soft)
    # alpha = 1 (no distillation): the unlabelled rows give the student no gradient
    plain = Distiller(student, _teacher(), DistillConfig(alpha=1.0), example_batch=data)
    plain.loss(cached).backward()
    item_grad = student.embedding.tables["item_id"].weight.grad  # (40, 8)
    only_unlabelled = set(cached["item_id"][32:].tolist()) - set(cached["item_id"][:32].tolist())
    assert only_unlabelled, "the test data must have items seen only in unlabelled rows"
    assert item_grad[sorted(only_unlabelled)].abs().max() == 0
    assert item_grad.abs().max() > 0


def test_distilled_student_learns_the_teacher():
    teacher = _teacher()
    data = _data(512)
    distiller = Distiller(_student(), teacher, DistillConfig(alpha=0.0, soft_loss="kl"))
    cached = distiller.cache_teacher(data)
    before = distiller.loss(cached).item()
    fit(distiller, TensorBatcher(cached, 64, shuffle=True), epochs=10, lr=0.02, progress=False)
    assert distiller.loss(cached).item() < 0.5 * before
    assert not teacher.training  # fit's train() did not wake the teacher
    assert all(not p.requires_grad for p in teacher.parameters())
    assert distiller.predict(data).shape == (512, 2)


def test_feature_distillation_sizes_the_projection_and_trains_it():
    data = _data(256)
    config = DistillConfig(alpha=0.5, feature_weight=1.0)
    distiller = Distiller(
        _student(), _teacher(), config, feature_layers=("mlp", "mlp"), example_batch=data
    )
    assert distiller.projection is not None
    assert distiller.projection.linear.weight.shape == (24, 8)  # teacher 24 ← student 8
    cached = distiller.cache_teacher(data)
    assert cached[TEACHER_HIDDEN].shape == (256, 24)
    trainable = {id(p) for p in distiller.parameters() if p.requires_grad}
    assert id(distiller.projection.linear.weight) in trainable
    before = distiller.loss(cached).item()
    fit(distiller, TensorBatcher(cached, 64, shuffle=True), epochs=8, lr=0.02, progress=False)
    assert distiller.loss(cached).item() < before


@pytest.mark.parametrize("soft_loss", ["listwise", "ranking_aware"])
def test_ranking_mode_with_sampled_candidates(soft_loss):
    data = _ranking_data()
    torch.manual_seed(0)
    teacher = ItemScorer(dim=32).eval()
    fit(teacher, TensorBatcher(data, 32, shuffle=True), epochs=30, lr=0.03, progress=False)
    config = DistillConfig(mode="ranking", soft_loss=soft_loss, alpha=0.2, num_candidates=12,
                           top_k=4)  # fmt: skip
    distiller = Distiller(ItemScorer(dim=4), teacher, config, example_batch=data)
    cached = distiller.cache_teacher(data)
    assert cached[CANDIDATES].shape == (128, 12) and cached[TEACHER_LOGITS].shape == (128, 12)
    torch.testing.assert_close(cached[CANDIDATES][:, :4], teacher(data).topk(4).indices)
    before = distiller.loss(cached).item()
    fit(distiller, TensorBatcher(cached, 32, shuffle=True), epochs=10, lr=0.03, progress=False)
    assert distiller.loss(cached).item() < before


# ------------------------------------------------------------------------------- bad input
def test_mismatched_output_shapes_fail_before_training():
    teacher = _teacher(tasks=("watch", "like", "share"))
    teacher.task_names = None  # hide the names: the shape check must catch it on its own
    teacher.config = None
    with pytest.raises(ValueError, match=r"\(64, 2\).*\(64, 3\)"):
        Distiller(_student(), teacher, example_batch=_data(64))


def test_mismatched_tasks_fail_before_training():
    with pytest.raises(ValueError, match="tasks"):
        Distiller(_student(), _teacher(tasks=("like", "watch")))


def test_teacher_in_training_mode_is_switched_to_eval_with_a_warning():
    teacher = _teacher().train()
    with pytest.warns(UserWarning, match="training mode"):
        distiller = Distiller(_student(), teacher)
    assert not teacher.training
    distiller.train()
    assert distiller.student.training and not teacher.training


def test_bad_config_raises():
    with pytest.raises(ValueError, match="soft_loss"):
        DistillConfig(mode="response", soft_loss="listwise")
    with pytest.raises(ValueError, match="alpha"):
        DistillConfig(alpha=1.5)
    with pytest.raises(ValueError, match="num_candidates"):
        DistillConfig(mode="ranking", soft_loss="listwise", top_k=10, num_candidates=5)
    with pytest.raises(ValueError, match="feature_layers"):
        Distiller(_student(), _teacher(), DistillConfig(feature_weight=1.0))
    with pytest.raises(ValueError, match="no submodule"):
        Distiller(_student(), _teacher(), DistillConfig(feature_weight=1.0),
                  feature_layers=("nope", "mlp"), example_batch=_data(8))  # fmt: skip


def test_teacher_copy_gives_zero_kl():
    teacher = _teacher()
    student = copy.deepcopy(teacher)
    distiller = Distiller(student, teacher, DistillConfig(alpha=0.0, soft_loss="kl"))
    student.eval()
    assert abs(distiller.loss(_data(32)).item()) < 1e-6


class ExpertStack(nn.Module):
    """A teacher whose hooked layer gives (B, E, D), like MMoE's experts."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(50, 12)
        self.experts = nn.Linear(12, 3 * 6)
        self.expert_outputs = nn.Identity()
        self.head = nn.Linear(6, 2)

    def forward(self, batch):
        e = self.expert_outputs(self.experts(self.embed(batch["user_id"])).view(-1, 3, 6))
        return self.head(e.mean(dim=1))  # (B, E, D) → (B, 2)


def test_feature_distillation_from_a_3d_teacher_layer_mean_pools():
    data = _data(64)
    config = DistillConfig(feature_weight=1.0, hidden_reduce="mean")
    distiller = Distiller(_student(), ExpertStack().eval(), config,
                          feature_layers=("mlp", "expert_outputs"), example_batch=data)  # fmt: skip
    assert distiller.projection.linear.weight.shape == (6, 8)
    cached = distiller.cache_teacher(data)
    assert cached[TEACHER_HIDDEN].shape == (64, 6)
    assert torch.isfinite(distiller.loss(cached))


def test_close_removes_the_feature_hooks_from_both_models():
    data = _data(32)
    student, teacher = _student(), _teacher()
    config = DistillConfig(feature_weight=1.0)
    with Distiller(student, teacher, config, feature_layers=("mlp", "mlp"),
                   example_batch=data) as distiller:  # fmt: skip
        assert student.mlp._forward_hooks and teacher.mlp._forward_hooks
        assert torch.isfinite(distiller.loss(data))
    assert not student.mlp._forward_hooks and not teacher.mlp._forward_hooks
    teacher(data)  # the teacher runs on, unhooked
    with pytest.raises(RuntimeError, match="close"):
        distiller.loss(data)
    distiller.close()  # idempotent
