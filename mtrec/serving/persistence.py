"""Saving and loading a fitted :class:`~mtrec.serving.recommender.Recommender` (no pickle anywhere).

A save is a folder of two files:

- ``config.json``: the format version, the :class:`~mtrec.serving.build.RecommenderConfig`
  (``"recommender"``), the fitted sizes, titles and fusion weights, ``tensors_sha256`` and
  ``router_sha256`` (the router's class list bound to its trained head: a reordered list would
  route every query to the wrong scenario);
- ``tensors.safetensors``: item and user tensors, the MMoE (``model.*``) and the router
  (``router.*``).

:func:`read_saved` checks everything before a model is built: both files exist, every key of
``config.json`` is known and present with its JSON type (:func:`read_meta`), the recommender
config is valid (:meth:`RecommenderConfig.from_dict` owns its keys and values), the tensors match
their sha256 and hold every required name. A damaged file raises ``ValueError`` naming it and
the fix. Saves made before the checksum existed load with a logged note (their tensors cannot be
verified); format 1 (mtrec 0.2.0, MovieLens scenarios and tasks built in) still loads. A save
without ``router_sha256`` loads when its classes are in the sorted order
:class:`~mtrec.routing.ScenarioClassifier` fits them in, and is refused otherwise.

Both files are written under a temporary name and renamed into place, readable by others as the
umask allows (a colleague can load a copy); :func:`serving_device` maps a save made on a GPU to
the CPU of a machine without one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import numbers
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from mtrec.serving.build import RecommenderConfig
from mtrec.utils import get_device, sha256_file, share_file

# The load note keeps the logger name of the Recommender's module, where it was logged before
# saving and loading had a module of their own: logging filters set on that name still apply.
log = logging.getLogger("mtrec.serving.recommender")

FORMAT_VERSION = 2  # of config.json; 1 (mtrec 0.2.0) had MovieLens scenarios and tasks built in
# config.json's keys besides "version": required (with their JSON type) and optional ones
REQUIRED_META = {"titles": list, "fusion": dict, "router_classes": list, "num_users": int,
                 "num_items": int, "occupations": int}  # fmt: skip
OPTIONAL_META = {"seed", "epochs", "device", "encoder", "tensors_sha256", "router_sha256"}
FORMAT_KEYS = {1: {"task_table", "text_dim"}, 2: {"recommender"}}  # per format version
FUSION_KEYS = ("query", "scenario", "pool", "trade_off", "tau")
REQUIRED_TENSORS = ("item_ids", "item_scenarios", "item_embeddings", "item_text",
                    "history_users", "history_indptr", "history_rows", "user_gender",
                    "user_occupation", "user_age")  # fmt: skip
FIX = "save the recommender again with Recommender.save (or restore the file)"
_MAPPED: set[str] = set()  # saved devices already warned about (mapped to the CPU, once each)


def serving_device(requested: str | None, saved: str | None, *, argument: str) -> torch.device:
    """Where a recommender runs: ``requested`` when given (``argument`` is its parameter's name,
    for the error's fix), else the ``saved`` device when this machine has it, else the CPU (a
    save made on a GPU machine, loaded on a CPU-only one: warned once per saved device)."""
    if requested is not None:
        try:
            return get_device(requested)
        except (ValueError, RuntimeError, TypeError):
            raise ValueError(
                f"{argument}={requested!r} is not a device this machine has (torch.cuda."
                f"is_available() is {torch.cuda.is_available()}); pass {argument}='cpu', or "
                f"{argument}=None for CUDA when present, else the CPU"
            ) from None
    try:
        return get_device(saved)
    except (ValueError, RuntimeError, TypeError):
        if str(saved) not in _MAPPED:
            _MAPPED.add(str(saved))
            log.warning(
                "the recommender was saved with device=%r, which this machine does not have: "
                "it runs on the CPU (warned once); pass device= to Recommender.load to choose",
                saved,
            )
        return torch.device("cpu")


def check_finite_state(state: Mapping[str, Tensor]) -> None:
    """Raise ValueError naming the first floating tensor of ``state`` with a NaN or inf value."""
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ValueError(
                f"the recommender's tensor {name!r} holds NaN or infinite values (training "
                "diverged, or a saved file was damaged); re-fit the recommender, or load an "
                "intact save"
            )


def prefixed(prefix: str, state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """``state``'s tensors (detached, on the CPU) under names ``prefix`` + name, as saved."""
    return {f"{prefix}{k}": v.detach().cpu() for k, v in state.items()}


def unprefixed(prefix: str, state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The tensors of ``state`` saved under ``prefix`` (see :func:`prefixed`), names stripped."""
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def router_sha256(classes: list[Any], state: Mapping[str, Tensor]) -> str:
    """sha256 of the router's class list (in order) and its ``router.*`` tensors: the class
    order is bound to the trained head, whose output j means ``classes[j]``."""
    digest = hashlib.sha256(json.dumps(list(classes)).encode())
    for key in sorted(k for k in state if k.startswith("router.")):
        tensor = state[key].detach().cpu().contiguous()
        digest.update(f"{key}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _write_shared(target: Path, write: Any) -> None:
    """``write(tmp)`` then rename ``tmp`` to ``target``, readable by others as the umask allows
    (safetensors writes 0600: a colleague's copy could not be read)."""
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        write(tmp)
        share_file(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


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
    _write_shared(tensors, lambda tmp: save_file({k: v.contiguous() for k, v in state.items()},
                                                 tmp))  # fmt: skip
    saved = {"version": FORMAT_VERSION, "recommender": config.to_dict(), **meta,
             "tensors_sha256": sha256_file(tensors),
             "router_sha256": router_sha256(meta["router_classes"], state)}  # fmt: skip
    _write_shared(directory / "config.json",
                  lambda tmp: tmp.write_text(json.dumps(saved, indent=1)))  # fmt: skip
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
    for file in files:  # a colleague's 0600 copy: say so, not a bare PermissionError
        if not os.access(file, os.R_OK):
            raise PermissionError(
                f"{file} exists but this user may not read it (mode "
                f"{file.stat().st_mode & 0o777:o}, owner uid {file.stat().st_uid}); ask its owner "
                f"to make the save readable (chmod a+r {directory}/*), or to save it again with "
                "Recommender.save, which writes files others can read"
            )
    meta = read_meta(files[0])
    config = _recommender_config(files[0], meta)
    if not set(config.scenarios) <= set(map(str, meta["router_classes"])):
        raise ValueError(
            f"{files[0]}: router_classes {meta['router_classes']} lack some of the config's "
            f"scenarios {list(config.scenarios)}; save the recommender again"
        )
    state = _read_tensors(files[1], meta.pop("tensors_sha256", None), meta_file=files[0])
    _check_router(files[0], meta["router_classes"], state, meta.pop("router_sha256", None))
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


def _check_router(
    file: Path, classes: list[Any], state: Mapping[str, Tensor], expected: str | None
) -> None:
    """Refuse ``router_classes`` in another order than the router head was trained with."""
    try:
        fitted = sorted(classes)  # ScenarioClassifier.fit's order (np.unique)
    except TypeError:
        fitted = None
    if expected is None:  # an older save: only the order fit writes can be trusted
        if classes != fitted or len(set(map(str, classes))) != len(classes):
            raise ValueError(
                f"{file}: router_classes {classes} are not in the sorted order "
                "ScenarioClassifier.fit saves them in, and the file has no router_sha256 to "
                "check another order against (saved by an older mtrec); the router would send "
                f"queries to the wrong scenario. Restore the order {fitted}, load it and save "
                "it again with Recommender.save (which adds the checksum), or re-fit"
            )
        return
    if router_sha256(classes, state) != expected:
        restore = (
            f"restore the order {fitted}"
            if fitted is not None and router_sha256(fitted, state) == expected
            else "restore the list it was saved with"
        )
        raise ValueError(
            f"{file}: router_classes {classes} do not match the router head they were saved "
            "with (router_sha256 differs): the list was reordered or edited, and the router "
            f"would send queries to the wrong scenario; {restore}, or save the recommender "
            "again with Recommender.save"
        )


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
