"""TextEncoder against ``SentenceTransformer.encode``, side by side in one run.

fp32 and the int8 fast path at the model's own truncation (256 tokens), the 128-token speed
option (all timed in alternation, in three fresh passes; each speed goal counts its median
pass), the worst cosine of the fast vectors to fp32 (on the timed reviews, the goal, and on
:data:`TEXT_HELD_OUT` others, in the detail: a minimum falls as the sample grows), and the
cache's re-encode speed-up, on real review texts; one of :data:`mtrec.bench.compare.COMPARISONS`.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Callable
from typing import Any

import torch

from mtrec.bench.cases import TEXT_ENCODER
from mtrec.bench.goals import goal_row, median_ratio_pass, ratio_goal, unavailable_goal
from mtrec.bench.inputs import review_texts
from mtrec.bench.measure import Context, timing_rows
from mtrec.bench.timing import SEED, time_interleaved, time_steps
from mtrec.extractors import text as text_module

Rows = list[dict[str, Any]]

TEXT_BATCH = 64
TEXT_MAX_LENGTH = 256  # tokens: the model's own (sentence_bert_config.json), TextEncoder's default
TEXT_SHORT = 128  # the speed option: shorter truncation, measured against the default
TEXT_FAST_TARGET = 2.0  # int8 path / SentenceTransformer.encode at the same max length
TEXT_COSINE_TARGET = 0.99  # worst cosine of the int8 (or 128-token) vectors to the fp32 default
TEXT_PASSES = 3  # fresh alternations of every encoder; each goal counts its median pass
TEXT_HELD_OUT = 512  # other reviews, untimed: the int8 vectors' cosine over a larger sample


def _worst_cosine(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    cosine = (a * b).sum(dim=1)
    return cosine.min().item(), cosine.mean().item()


def compare_text(ctx: Context) -> tuple[Rows, Rows]:
    """TextEncoder fp32 / int8 fast path / SentenceTransformer.encode at the same truncation (256),
    the 128-token speed option, and the cache's re-encode speed-up (batch 64, real reviews)."""
    device = ctx.device
    goal_speed = f"TextEncoder / SentenceTransformer, batch {TEXT_BATCH}, max length 256"
    goal_fast = f"TextEncoder int8 / SentenceTransformer, batch {TEXT_BATCH}, max length 256"
    goal_cosine = "TextEncoder int8 worst cosine to fp32 (real reviews)"
    goal_cache = "TextEncoder cache speed-up"
    try:  # an optional extra
        from sentence_transformers import SentenceTransformer
    except ImportError as err:
        return [], [
            unavailable_goal(goal_speed, "text", device, err, 1.0),
            unavailable_goal(goal_fast, "text", device, err, TEXT_FAST_TARGET),
            unavailable_goal(goal_cache, "text", device, err, 50.0),
        ]
    texts = review_texts(TEXT_BATCH)
    path = text_module.default_model_path()
    with text_module.quiet_transformers():
        st = SentenceTransformer(path, device=str(device))
    st.max_seq_length = TEXT_MAX_LENGTH  # the same truncation on both sides
    repeats = 3 if ctx.settings.quick else 7
    with tempfile.TemporaryDirectory() as tmp:

        def encoder(**options: Any) -> Any:
            return text_module.TextEncoder(path, device=device, cache_dir=tmp,
                                           batch_size=TEXT_BATCH, **options)  # fmt: skip

        encoders = {
            TEXT_ENCODER: encoder(),
            f"{TEXT_ENCODER} L{TEXT_SHORT}": encoder(max_length=TEXT_SHORT),
        }
        fast = None
        if device.type == "cpu":
            try:
                fast = encoder(precision="int8")
                fast.encode(texts[:2], progress=False)  # export + quantise once, untimed
                encoders[f"{TEXT_ENCODER} int8"] = fast
            except ImportError as err:
                fast_error: Exception = err
        with warnings.catch_warnings():  # the L128 encoder truncates some reviews: its point
            warnings.simplefilter("ignore", UserWarning)
            vectors = {name: enc.encode(texts, progress=False) for name, enc in encoders.items()}
            if fast is not None:  # untimed: the int8 vectors' accuracy on a larger sample
                held_out = review_texts(TEXT_HELD_OUT, exclude=texts, seed=SEED + 1)
                low_held, mean_held = _worst_cosine(
                    fast.encode(held_out, progress=False),
                    encoders[TEXT_ENCODER].encode(held_out, progress=False),
                )

        def first_pass(enc: Any) -> Callable[[], None]:
            return lambda: enc._encode_uncached(texts, TEXT_BATCH, False)  # the model, no cache

        steps = {name: first_pass(enc) for name, enc in encoders.items()}
        steps["sentence-transformers"] = lambda: st.encode(
            texts, batch_size=TEXT_BATCH, convert_to_tensor=True, show_progress_bar=False
        )
        passes = [
            time_interleaved(
                steps,
                device=device,
                batch_size=TEXT_BATCH,
                warmup=1,
                repeats=repeats,
                min_repeats=3,
                budget_s=15.0,
            )
            for _ in range(TEXT_PASSES)
        ]
        default = encoders[TEXT_ENCODER]
        cached_timing = time_steps(
            lambda: default.encode(texts, progress=False),
            device=device,
            batch_size=TEXT_BATCH,
            warmup=2,
            repeats=20,
        )
    timings, note = median_ratio_pass(passes, TEXT_ENCODER, "sentence-transformers", 1.0)
    timings = {**timings, f"{TEXT_ENCODER} cached": cached_timing}
    rows = timing_rows(ctx.env, timings, batch_size=TEXT_BATCH, phase="inference")
    for item in rows:
        if item["model"].endswith(" int8"):
            item["precision"] = "int8"
    rates = {name: timing.samples_per_s for name, timing in timings.items()}
    ours, theirs = rates[TEXT_ENCODER], rates["sentence-transformers"]
    short = f"{TEXT_ENCODER} L{TEXT_SHORT}"
    low, mean = _worst_cosine(vectors[short], vectors[TEXT_ENCODER])
    goals = [
        ratio_goal(goal_speed, "text", device, ours, theirs, 1.0,
                   "sentences/s {ours:.0f} vs {theirs:.0f} (real review texts) in "
                   f"{note}; max length {TEXT_SHORT}: {rates[short]:.0f} sentences/s, cosine "
                   f"to 256 min {low:.4f} mean {mean:.4f}"),
    ]  # fmt: skip
    if fast is not None:
        low8, mean8 = _worst_cosine(vectors[f"{TEXT_ENCODER} int8"], vectors[TEXT_ENCODER])
        int8 = f"{TEXT_ENCODER} int8"
        fast_timings, fast_note = median_ratio_pass(
            passes, int8, "sentence-transformers", TEXT_FAST_TARGET
        )
        fast_rate, fast_theirs = (
            fast_timings[n].samples_per_s for n in (int8, "sentence-transformers")
        )
        goals += [
            ratio_goal(goal_fast, "text", device, fast_rate, fast_theirs, TEXT_FAST_TARGET,
                       "sentences/s {ours:.0f} vs {theirs:.0f} in "
                       f"{fast_note}; each batch of {TEXT_BATCH} run in length buckets "
                       f"(sentence-transformers: as one); cosine to fp32 min {low8:.4f}"),
            goal_row(goal_cosine, "text", device, low8, TEXT_COSINE_TARGET,
                     f"mean {mean8:.4f} over the {len(texts)} timed reviews; over "
                     f"{len(held_out)} others: worst {low_held:.4f}, mean {mean_held:.4f}"),
        ]  # fmt: skip
    else:
        reason = fast_error if device.type == "cpu" else RuntimeError("a CPU path")
        goals.append(unavailable_goal(goal_fast, "text", device, reason, TEXT_FAST_TARGET))
    cached = rates[f"{TEXT_ENCODER} cached"]
    goals.append(ratio_goal(goal_cache, "text", device, cached, ours, 50.0,
                            "cached {ours:.0f} vs first pass {theirs:.0f} sentences/s"))  # fmt: skip
    return rows, goals
