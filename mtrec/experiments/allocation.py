"""Notebook 14's compute-allocation study as an experiment: what each policy's lists are worth.

Per seed, on MovieLens-100k with temporal leave-last-out (:mod:`mtrec.experiments.allocation_study`
holds the parts):

1. the teacher (MMoE over ids, demographics, genres and the PCA of MiniLM titles) and the
   ID-only student distilled from it are trained on the training ratings (:func:`fit_pair`);
2. ``--eval-users`` test users (a seeded permutation) are scored at every cascade depth of
   :data:`DEPTHS` (:func:`depth_quality`); the first third calibrates the per-scenario depth
   caps (the smallest depth whose lists agree with the teacher's to :data:`AGREEMENT_TARGET`);
3. ``--requests`` requests are drawn (seeded, with replacement) from the other users, and each
   policy's depth per request gives its NDCG@10 against the held-out item (``ndcg@10``) and
   against the teacher's top-10 (``ndcg@10_vs_teacher``), averaged over the requests.

Rows (dataset ``ml-100k``, task ``top10_leave_last_out``): ``cascade-<policy>@2x-load`` for the
policies whose quality at twice the teacher-only capacity does not depend on the machine:
teacher only, student only, the fixed cascades N=50 and N=400, and the adaptive controller with
the scenario budgets, which at that load serves every request at its scenario's cap (notebook 14
simulates the load with the measured stage costs and prints how many requests the SLO pushed
below their cap there). The controller without budgets fills idle time with depth, so its
lists depend on the measured costs: it has no row.

``mtrec run allocation`` runs it; notebook 14 shows the recorded rows beside a live run.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from mtrec.checks import check_int
from mtrec.data import ML_SCENARIOS, leave_last_out, load_movielens
from mtrec.experiments import runner
from mtrec.experiments.allocation_study import (
    TASKS,
    DepthQuality,
    depth_quality,
    fit_pair,
    movielens_tables,
    title_pca,
    user_scenarios,
)
from mtrec.experiments.runner import Experiment
from mtrec.extractors.text import TextEncoder
from mtrec.utils import set_seed

SEEDS = (0, 1, 2)
DATASET, TASK = "ml-100k", "top10_leave_last_out"
TEXT_DIM = 32  # principal components of each title's MiniLM embedding fed to the teacher
TEACHER_EPOCHS, STUDENT_EPOCHS = 2, 3  # fixed, no early stopping (nothing looks at test items)
TRANSFER_SIZE = 100_000  # random (user, item) pairs the teacher labels for the student
EVAL_USERS = 450  # test users scored at every depth: the first third calibrates the caps
DEPTHS = (0, 10, 20, 50, 100, 200, 400, 800, 1682)  # cascade depths N; 1682 = every item
REQUESTS = 1500  # replayed requests (drawn from the non-calibration users)
AGREEMENT_TARGET = 0.98  # a scenario's cap: the smallest N whose lists agree this well
MIN_CURVE_USERS = 5  # a scenario with fewer calibration users takes the pooled curve
SCENARIOS = list(ML_SCENARIOS)
# scenario → the tasks its relevance sums (notebook 11's table): family ranks by watch only
TASK_TABLE = {s: ["watch"] if s == "family" else list(TASKS) for s in SCENARIOS}
# policy → its depth: an int N, "all" (every candidate) or "cap" (the scenario's depth cap)
POLICIES = {"teacher only": "all", "student only": 0, "cascade N=50": 50, "cascade N=400": 400,
            "adaptive (SLO + budgets)": "cap"}  # fmt: skip


def result_name(policy: str) -> str:
    """The quality.csv model name of a policy's row, e.g. ``cascade-cascade-N=50@2x-load``."""
    slug = policy.replace(" ", "-").replace("(", "").replace(")", "").replace("+", "and")
    return f"cascade-{slug}@2x-load"


def item_scenarios(items: pd.DataFrame, num_items: int) -> Tensor:
    """(I+1,) the scenario id of each item id (row 0 unused)."""
    out = torch.zeros(num_items + 1, dtype=torch.long)
    out[torch.tensor(items.item_id.to_numpy())] = torch.tensor(items.scenario_id.to_numpy())
    return out


def task_masks(scenario_of: np.ndarray) -> Tensor:
    """(U, T) bool: the tasks of each user's scenario (:data:`TASK_TABLE`), in ``TASKS`` order."""
    return torch.tensor([[t in TASK_TABLE[SCENARIOS[s]] for t in TASKS] for s in scenario_of])


def scenario_curves(
    agreement: np.ndarray, scenario_of: np.ndarray
) -> tuple[dict[str, dict[int, float]], dict[str, int]]:
    """Per scenario, mean agreement per depth over its calibration users (and their count).

    ``agreement`` (U_cal, D) and ``scenario_of`` (U_cal,) are the calibration users' rows; a
    scenario with fewer than :data:`MIN_CURVE_USERS` of them takes the pooled curve.
    """
    curves, counts = {}, {}
    for s, name in enumerate(SCENARIOS):
        rows = scenario_of == s
        counts[name] = int(rows.sum())
        pooled = agreement if counts[name] < MIN_CURVE_USERS else agreement[rows]
        curves[name] = dict(zip(DEPTHS, pooled.mean(0).tolist()))
    return curves, counts


def depth_caps(curves: dict[str, dict[int, float]], target: float) -> dict[str, int | None]:
    """Per scenario, the smallest depth whose agreement reaches ``target`` (None: none does).

    The rule of :meth:`mtrec.serving.budget.BudgetTable.from_quality` (tested to agree).
    """
    caps = {}
    for scenario, curve in curves.items():
        good = [d for d, q in sorted(curve.items()) if q >= target]
        caps[scenario] = good[0] if good else None
    return caps


def policy_depths(
    policy: str, num_candidates: np.ndarray, scenarios: list[str], caps: dict[str, int | None]
) -> np.ndarray:
    """(n,) the depth each request gets under ``policy`` (clipped to its candidate count)."""
    rule = POLICIES[policy]
    if rule == "all":
        return num_candidates.copy()
    if rule == "cap":
        cap = np.array([num_candidates.max() if caps[s] is None else caps[s] for s in scenarios])
        return np.minimum(cap, num_candidates)
    return np.minimum(rule, num_candidates)


def policy_rows(
    quality: DepthQuality,
    draw: np.ndarray,
    num_candidates: np.ndarray,
    scenarios: list[str],
    caps: dict[str, int | None],
) -> pd.DataFrame:
    """Tidy rows: each policy's mean NDCG@10 (held-out, vs the teacher) over the requests."""
    rows = []
    for policy in POLICIES:
        depths = policy_depths(policy, num_candidates, scenarios, caps)
        agree, held = quality.lookup(draw, depths, num_candidates)
        rows += [{"model": result_name(policy), "metric": "ndcg@10", "value": float(held.mean())},
                 {"model": result_name(policy), "metric": "ndcg@10_vs_teacher",
                  "value": float(agree.mean())}]  # fmt: skip
    return pd.DataFrame(rows)


def run_seed(seed: int, args: argparse.Namespace) -> pd.DataFrame:
    """One seed: train the pair, score the users at every depth, rate each policy's lists."""
    check_int(args.eval_users, "--eval-users", min=3)  # a third calibrates, the rest replay
    check_int(args.requests, "--requests", min=1)
    torch.set_num_threads(1)  # as notebook 14 (one worker = one CPU thread)
    set_seed(seed)
    ml = load_movielens()
    split = leave_last_out(ml.ratings)
    titles = TextEncoder().encode(ml.items.title.tolist(), progress=False)  # cached on disk
    tables = movielens_tables(ml.users, ml.items, title_pca(titles, TEXT_DIM))
    seen = {u: g.item_id.to_numpy() for u, g in split.train.groupby("user_id")}
    targets = dict(zip(split.test.user_id, split.test.item_id))
    teacher, student = fit_pair(tables, split.train, teacher_epochs=args.teacher_epochs,
                                student_epochs=args.student_epochs,
                                transfer_size=args.transfer_size, seed=seed)  # fmt: skip
    rng = np.random.default_rng(seed)
    users = rng.permutation(sorted(targets))[: args.eval_users]
    n_cal = len(users[: args.eval_users // 3])  # calibration users; the others are replayed
    scenario_of = user_scenarios(seen, item_scenarios(ml.items, tables.num_items), users)
    quality = depth_quality(teacher, student, tables, users, seen=seen, targets=targets,
                            tasks=task_masks(scenario_of), depths=DEPTHS)  # fmt: skip
    curves, _ = scenario_curves(quality.agreement[:n_cal], scenario_of[:n_cal])
    caps = depth_caps(curves, AGREEMENT_TARGET)
    draw = n_cal + rng.integers(0, len(users) - n_cal, size=args.requests)  # rows of `users`
    num_candidates = np.array([tables.num_items - len(seen[int(u)]) for u in users[draw]])
    scenarios = [SCENARIOS[s] for s in scenario_of[draw]]
    return policy_rows(quality, draw, num_candidates, scenarios, caps)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--teacher-epochs", type=int, default=TEACHER_EPOCHS)
    parser.add_argument("--student-epochs", type=int, default=STUDENT_EPOCHS)
    parser.add_argument("--transfer-size", type=int, default=TRANSFER_SIZE)
    parser.add_argument("--eval-users", type=int, default=EVAL_USERS,
                        help="test users scored at every depth (a third calibrates the caps)")  # fmt: skip
    parser.add_argument("--requests", type=int, default=REQUESTS,
                        help="requests drawn from the non-calibration users")  # fmt: skip


EXPERIMENT = Experiment(
    name="allocation",
    run_seed=run_seed,
    seeds=SEEDS,
    dataset=DATASET,
    task=TASK,
    description="notebook 14: NDCG@10 of each compute-allocation policy's lists on ML-100k",
    add_arguments=add_arguments,
)


def recorded(models: list[str] | None = None) -> pd.DataFrame:
    """The recorded rows (``benchmarks/results/quality.csv``), optionally of ``models`` only."""
    return runner.recorded(EXPERIMENT, models)


def main(argv: list[str] | None = None) -> pd.DataFrame:
    return runner.main(EXPERIMENT, argv)


if __name__ == "__main__":
    main()
