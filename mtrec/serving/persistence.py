"""Saving and loading a fitted :class:`~mtrec.serving.recommender.Recommender` (no pickle anywhere).

A save is a folder of two files:

- ``config.json``: the format version, the :class:`~mtrec.serving.build.RecommenderConfig`
  (``"recommender"``), the fitted sizes, titles and fusion weights, and ``tensors_sha256``;
- ``tensors.safetensors``: item and user tensors, the MMoE (``model.*``) and the router
  (``router.*``).

:func:`read_saved` checks everything before a model is built: both files exist, every key of
``config.json`` is known and present with its JSON type (:func:`read_meta`), the recommender
config is valid (:meth:`RecommenderConfig.from_dict` owns its keys and values), the tensors match
their sha256 and hold every required name. A damaged file raises ``ValueError`` naming it and
the fix. Saves made before the checksum existed load with a logged note (their tensors cannot be
verified); format 1 (mtrec 0.2.0, MovieLens scenarios and tasks built in) still loads.
"""

from __future__ import annotations

import json
import logging
import numbers
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.torch import load_file, save_file
from torch import Tensor

from mtrec.serving.build import RecommenderConfig
from mtrec.utils import sha256_file

# The load note keeps the logger name of the Recommender's module, where it was logged before
# saving and loading had a module of their own: logging filters set on that name still apply.
log = logging.getLogger("mtrec.serving.recommender")

FORMAT_VERSION = 2  # of config.json; 1 (mtrec 0.2.0) had MovieLens scenarios and tasks built in
# config.json's keys besides "version": required (with their JSON type) and optional ones
REQUIRED_META = {"titles": list, "fusion": dict, "router_classes": list, "num_users": int,
                 "num_items": int, "occupations": int}  # fmt: skip
OPTIONAL_META = {"seed", "epochs", "device", "encoder", "tensors_sha256"}
FORMAT_KEYS = {1: {"task_table", "text_dim"}, 2: {"recommender"}}  # per format version
FUSION_KEYS = ("query", "scenario", "pool", "trade_off", "tau")
REQUIRED_TENSORS = ("item_ids", "item_scenarios", "item_embeddings", "item_text",
                    "history_users", "history_indptr", "history_rows", "user_gender",
                    "user_occupation", "user_age")  # fmt: skip
FIX = "save the recommender again with Recommender.save (or restore the file)"


def write_saved(
    directory: str | Path,
    state: Mapping[str, Tensor],
    *,
    config: RecommenderConfig,
    meta: Mapping[str, Any],
) -> Path:
    """Write ``tensors.safetensors`` (``state``) and ``config.json`` into ``directory``.

    Args:
        directory: the save folder (created if needed).
        state: every tensor of the recommender, on the CPU.
        config: what the recommender routes between and predicts.
        meta: the fitted sizes, titles, fusion weights and run settings.

    Returns:
        ``directory`` as a path.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = directory / "tensors.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, tensors)
    saved = {"version": FORMAT_VERSION, "recommender": config.to_dict(), **meta,
             "tensors_sha256": sha256_file(tensors)}  # fmt: skip
    (directory / "config.json").write_text(json.dumps(saved, indent=1))
    return directory


def read_saved(
    directory: str | Path,
) -> tuple[dict[str, Tensor], dict[str, Any], RecommenderConfig]:
    """The tensors, the meta (``config.json`` without its version, config and checksum) and the
    config of a save, every part checked (raises ``FileNotFoundError`` or ``ValueError``)."""
    directory = Path(directory)
    files = [directory / "config.json", directory / "tensors.safetensors"]
    if not all(f.is_file() for f in files):
        raise FileNotFoundError(
            f"{directory} does not hold a saved pipeline: expected config.json and "
            f"tensors.safetensors, missing {[f.name for f in files if not f.is_file()]}; "
            "write one with Recommender.save(directory)"
        )
    meta = read_meta(files[0])
    config = _recommender_config(files[0], meta)
    if not set(config.scenarios) <= set(map(str, meta["router_classes"])):
        raise ValueError(
            f"{files[0]}: router_classes {meta['router_classes']} lack some of the config's "
            f"scenarios {list(config.scenarios)}; save the recommender again"
        )
    state = _read_tensors(files[1], meta.pop("tensors_sha256", None), meta_file=files[0])
    if len(meta["titles"]) != len(state["item_ids"]):
        raise ValueError(
            f"{files[0]} lists {len(meta['titles'])} titles but {files[1]} has "
            f"{len(state['item_ids'])} items; the two files come from different saves: "
            "save the recommender again"
        )
    return state, meta, config


def _recommender_config(file: Path, meta: dict[str, Any]) -> RecommenderConfig:
    """Pop the version and the recommender config out of ``meta`` (checked by
    :func:`read_meta`); :meth:`RecommenderConfig.from_dict` checks the config's keys and values.

    Format 1 (mtrec 0.2.0) had MovieLens scenarios and tasks built in: they become
    :meth:`RecommenderConfig.movielens` with the saved task table and text width.
    """
    if meta.pop("version") == 1:
        section: Any = RecommenderConfig.movielens().to_dict()
        section.update(task_table=meta.pop("task_table"), text_dim=meta.pop("text_dim"))
    else:
        section = meta.pop("recommender")
    try:
        return RecommenderConfig.from_dict(section)
    except (TypeError, ValueError, KeyError, AttributeError) as error:
        detail = error.args[0] if isinstance(error, KeyError) and error.args else error
        raise ValueError(
            f"{file} holds an invalid recommender config ({detail}); it must be "
            "RecommenderConfig.to_dict() of the fitted config: save the recommender again"
        ) from error


def _read_tensors(file: Path, expected: str | None, *, meta_file: Path) -> dict[str, Tensor]:
    """``tensors.safetensors`` checked against its sha256 (``expected``; ``None``: an old save,
    loaded with a note) and for every name in :data:`REQUIRED_TENSORS`."""
    if expected is None:
        log.warning(
            "%s has no tensors_sha256 (saved by an older mtrec): its tensors are loaded "
            "unverified; save it again to add the checksum",
            meta_file,
        )
    elif sha256_file(file) != expected:
        raise ValueError(
            f"{file} is corrupted: its sha256 does not match the one in config.json "
            "(the file was damaged or changed after saving); save the recommender again, "
            "or re-fit it"
        )
    try:
        state = load_file(file)
    except Exception as error:  # safetensors' own SafetensorError on a damaged header
        raise ValueError(
            f"{file} is corrupted and cannot be read ({error}); save the recommender "
            "again, or re-fit it"
        ) from error
    missing = [k for k in REQUIRED_TENSORS if k not in state]
    if missing:
        raise ValueError(
            f"{file} lacks the tensors {missing}; it was not written by "
            "Recommender.save: save the recommender again, or re-fit it"
        )
    return state


def read_meta(file: Path) -> dict[str, Any]:
    """``config.json`` of a saved recommender, every top-level key checked (raises
    ``ValueError``); the ``"recommender"`` entry is left to :meth:`RecommenderConfig.from_dict`."""
    try:
        meta = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:  # JSONDecodeError is a ValueError
        raise ValueError(f"{file} is not valid JSON ({error}); {FIX}") from error
    if not isinstance(meta, dict):
        raise ValueError(
            f"{file} must hold a JSON object of settings, got a {type(meta).__name__}; {FIX}"
        )
    version = meta.get("version")
    if isinstance(version, bool) or version not in tuple(FORMAT_KEYS):
        raise ValueError(
            f"{file} has pipeline format version {version!r}, expected 1 or "
            f"{FORMAT_VERSION}; re-fit and save with this version of mtrec"
        )
    required = {**REQUIRED_META, **{k: object for k in FORMAT_KEYS[version]}}
    known = {"version", *required, *OPTIONAL_META}
    missing = sorted(set(required) - set(meta))
    unknown = sorted(set(meta) - known)
    if missing or unknown:
        raise ValueError(
            f"{file} (format {version}) is missing the keys {missing} and has unknown keys "
            f"{unknown}; expected {sorted(required)} (optional: {sorted(OPTIONAL_META)}); a "
            f"renamed key must get its name back, or {FIX}"
        )
    for key, kind in REQUIRED_META.items():
        value = meta[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ValueError(
                f"{file}: {key!r} must be a JSON {kind.__name__}, got {_shown(value)}; {FIX}"
            )
    fusion = meta["fusion"]
    missing = sorted(set(FUSION_KEYS) - set(fusion))
    unknown = sorted(set(fusion) - set(FUSION_KEYS))
    bad = [k for k in FUSION_KEYS if k in fusion and (isinstance(fusion[k], bool) or
           not isinstance(fusion[k], numbers.Real) or not np.isfinite(fusion[k]))]  # fmt: skip
    if missing or unknown or bad:
        raise ValueError(
            f"{file}: 'fusion' must have the numbers {list(FUSION_KEYS)}; missing {missing}, "
            f"unknown {unknown}, not finite numbers {bad}; {FIX}"
        )
    if not isinstance(fusion["pool"], int) or fusion["pool"] < 1:
        raise ValueError(f"{file}: fusion 'pool' must be an int >= 1, got {fusion['pool']!r}")
    if not all(isinstance(t, str) for t in meta["titles"]):
        raise ValueError(f"{file}: 'titles' must be a list of strings; {FIX}")
    return meta


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
