"""The fast CPU path of :class:`~mtrec.extractors.text.TextEncoder`: int8 onnxruntime.

The Hugging Face encoder is built once into an int8 ONNX file and kept on disk:

1. **export** (token ids and mask → (B, L, D) token states, dynamic batch and length) with the
   TorchScript exporter from a copy of the model with eager attention: that graph is the one
   onnxruntime's transformer optimizer recognises (the dynamo exporter's graph of fused SDPA
   attention is left unfused);
2. **fuse** with onnxruntime's transformer optimizer (``model_type="bert"``): each layer's
   attention becomes one ``Attention`` node, bias + GELU one ``BiasGelu``, residual + LayerNorm
   one ``SkipLayerNormalization``, and the embeddings one ``EmbedLayerNormalization``;
3. **quantise** the weight matmuls and the fused attention's projection dynamically to int8
   (per-output-channel weight scales, activations quantised per call; the VNNI integer kernels
   do the work). The matmuls that read a GELU output in the first half of the layers stay fp32
   (:func:`fp32_matmuls`): those feed-forward output projections have the widest input range,
   and the early layers' rounding is carried through every later one. Measured on 512 Women's
   Clothing reviews other than the benchmark's: quantising one layer's projection too lowers the
   mean cosine to the fp32 vectors by 0.0014, 0.0006, 0.0009 for layers 0-2 of all-MiniLM-L6-v2
   and by 0.0003, 0.0002, 0.0001 for layers 3-5; keeping only layers 0-2 in fp32 costs 0.0005
   of mean cosine on that sample (0.9954 instead of 0.9960; worst 0.979 instead of 0.983) and
   makes the encoder about 15% faster than keeping all six; quantising all six drops the mean to
   0.9925. ``mtrec bench --models text`` reports the cosine on the timed reviews and on 512
   others.
4. **run** each batch in buckets of similar length, each cut to its longest text
   (:func:`run_in_buckets`): on the benchmark's 64 reviews, padded to the longest, 47% of the
   token slots are padding; in buckets, under a quarter of each bucket's. Measured on an AVX-512
   Xeon, the int8 encoder's time per batch falls from 650 to 335 ms.

onnxruntime, onnx and onnxscript are the optional ``serve`` extra, imported only here.
"""

from __future__ import annotations

import copy
import logging
import os
import tempfile
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from mtrec.extractors.text_cache import unreadable_note
from mtrec.utils import sha256_file, share_file

log = logging.getLogger(__name__)


class _TokenStates(nn.Module):
    """(input_ids, attention_mask) → last_hidden_state, the graph that is exported."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def _require_serve() -> Any:
    try:
        import onnxruntime
        import onnxscript  # noqa: F401  (the exporter needs it)
        from onnxruntime import quantization  # noqa: F401
    except ImportError as error:
        raise ImportError(
            "TextEncoder(precision='int8') runs the encoder in onnxruntime; install the serve "
            "extra: pip install 'mtrec[serve]' (onnxruntime, onnx, onnxscript), or use fp32"
        ) from error
    return onnxruntime


RECIPE = "fused-late-ffn"  # in the file name: a file of an older recipe is never reused
BUCKET_RATIO = 0.75  # a length bucket ends at the first text shorter than 3/4 of its longest
BATCHING = f"buckets-{BUCKET_RATIO}"  # in the int8 vectors' cache key, beside RECIPE


def length_buckets(lengths: Sequence[int], ratio: float = BUCKET_RATIO) -> list[np.ndarray]:
    """Row indices grouped by length, longest first: a bucket ends at the first row shorter than
    ``ratio`` times the bucket's longest, so padding fills under ``1 - ratio`` of its token slots.

    Every row is in exactly one bucket; equal lengths keep their order.
    """
    order = np.argsort(-np.asarray(lengths), kind="stable")
    buckets, start = [], 0
    for end in range(1, len(order) + 1):
        if end == len(order) or lengths[order[end]] < ratio * lengths[order[start]]:
            buckets.append(order[start:end])
            start = end
    return buckets


def run_in_buckets(session: Any, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """(B, L, D) token states of a right-padded batch, the session run once per length bucket.

    Each bucket (:func:`length_buckets`) is cut to its longest text. A batch padded to its longest
    text otherwise spends much of its work on padding (47% of the token slots of the benchmark's
    64 reviews), and attention's share of it grows with the square of the length. Positions past
    a text's end are 0; pooling reads the mask. Activations are quantised per call, so a vector
    depends slightly on the texts that share its bucket, as it did on those sharing its batch.
    """
    lengths = attention_mask.sum(axis=1)
    out: np.ndarray | None = None
    for rows in length_buckets(lengths.tolist()):
        width = max(int(lengths[rows[0]]), 1)
        feeds = {
            "input_ids": input_ids[rows, :width],
            "attention_mask": attention_mask[rows, :width],
        }
        states = session.run(None, feeds)[0]  # (b, width, D)
        if out is None:
            out = np.zeros((*input_ids.shape, states.shape[-1]), dtype=states.dtype)
        out[rows, :width] = states
    assert out is not None  # a batch has at least one row
    return out


def export_encoder(model: nn.Module, tokenizer: Any, path: Path) -> Path:
    """Export ``model`` (a Hugging Face encoder) to ``path`` as fp32 ONNX, dynamic batch/length.

    The TorchScript exporter, on a copy with eager attention: the graph the transformer optimizer
    fuses (:func:`fuse_encoder`)."""
    example = tokenizer(["a short text", "and a second, longer one"], padding=True,
                        return_tensors="pt")  # fmt: skip
    eager = copy.deepcopy(model).cpu().eval()
    if hasattr(eager, "set_attn_implementation"):  # a Hugging Face model
        eager.set_attn_implementation("eager")
    dynamic = {0: "batch", 1: "length"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notes
        torch.onnx.export(
            _TokenStates(eager),
            (example["input_ids"], example["attention_mask"]),
            str(path),
            input_names=["input_ids", "attention_mask"],
            output_names=["last_hidden_state"],
            dynamic_axes=dict.fromkeys(
                ["input_ids", "attention_mask", "last_hidden_state"], dynamic
            ),
            opset_version=17,
            dynamo=False,
        )
    return path


def fuse_encoder(source: Path, target: Path, config: Any) -> dict[str, int]:
    """onnxruntime's transformer optimizer over ``source`` → ``target``; the fused-op counts
    (no ``"Attention"`` entry: the optimizer did not recognise this encoder's attention)."""
    from onnxruntime.transformers import optimizer

    fused = optimizer.optimize_model(
        str(source),
        model_type="bert",
        num_heads=config.num_attention_heads,
        hidden_size=config.hidden_size,
        opt_level=0,  # graph fusions only; the session applies its own optimisations on load
    )
    fused.save_model_to_file(str(target))
    return {op: n for op, n in fused.get_fused_operator_statistics().items() if n}


def gelu_fed_matmuls(path: Path) -> list[str]:
    """Names of the MatMul nodes whose input is a GELU output (the feed-forward output
    projections), in graph order: layer by layer."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    producer = {out: node.op_type for node in graph.node for out in node.output}
    return [
        node.name
        for node in graph.node
        if node.op_type == "MatMul"
        and producer.get(node.input[0]) in ("Gelu", "FastGelu", "BiasGelu")
    ]


def fp32_matmuls(path: Path) -> list[str]:
    """The MatMul nodes left in fp32: the GELU-fed ones of the first half of the layers (rounded
    up; 3 of all-MiniLM-L6-v2's 6). See the module docstring for the measurements."""
    gelu_fed = gelu_fed_matmuls(path)
    return gelu_fed[: -(-len(gelu_fed) // 2)]


def quantize_int8(source: Path, target: Path) -> Path:
    """Dynamic int8 quantisation of the weight matmuls and fused attention of ``source``, the
    early layers' GELU-fed matmuls excepted (:func:`fp32_matmuls`)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    keep = fp32_matmuls(source)
    if not keep:
        log.warning("%s: no GELU-fed MatMul found; every weight matmul is quantised", source)
    logging.getLogger().disabled, was = True, logging.getLogger().disabled  # its preprocess hint
    try:
        quantize_dynamic(
            str(source),
            str(target),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul", "Attention"],
            nodes_to_exclude=keep,
            extra_options={  # fused ops have no shape-inferred type: their outputs are float
                "MatMulConstBOnly": True,
                "DefaultTensorType": onnx.TensorProto.FLOAT,
            },
        )
    finally:
        logging.getLogger().disabled = was
    return target


def int8_session(model: nn.Module, tokenizer: Any, folder: Path, identity: str) -> Any:
    """An onnxruntime session of the int8 encoder, built once per model in ``folder``.

    The file's sha256 is kept next to it (``.sha256``) and checked on every load: a damaged
    file, or one without its checksum (an older mtrec), is rebuilt with a warning. A folder that
    cannot be written (a colleague's read-only cache) gets the file built in a temporary folder
    for this process, with one warning.
    """
    ort = _require_serve()
    path = folder / f"encoder-{identity}-{RECIPE}-int8.onnx"
    problem = _damage(path) if path.exists() else None
    if problem is not None:
        log.warning("%s; rebuilding it", problem)
    if problem is not None or not path.is_file():
        try:
            _build(model, tokenizer, path)
        except OSError as error:  # read-only or full cache folder: build it for this process
            log.warning(
                "could not write the int8 text encoder into %s (%s); building it in a "
                "temporary folder for this process only. Pass cache_dir= a writable folder "
                "to keep it",
                folder,
                error,
            )
            with tempfile.TemporaryDirectory() as tmp:
                return _session(ort, _build(model, tokenizer, Path(tmp) / path.name))
    return _session(ort, path)


def _checksum_file(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _damage(path: Path) -> str | None:
    """Why the int8 file at ``path`` cannot be trusted (unreadable, no checksum, a changed
    sha256), or None when it matches the checksum written with it."""
    note = unreadable_note(path)
    if note is not None:
        return note
    checksum = _checksum_file(path)
    if not checksum.is_file():
        return (
            f"{path} has no {checksum.name} (written by an older mtrec, or the checksum was "
            "removed), so its sha256 cannot be verified"
        )
    if sha256_file(path) != checksum.read_text().strip():
        return f"{path} does not match its sha256 in {checksum.name} (the file is damaged)"
    return None


def _build(model: nn.Module, tokenizer: Any, path: Path) -> Path:
    """Export, fuse and quantise the encoder into ``path`` and write its checksum (both readable by
    others, each renamed into place: a concurrent reader never sees half a file)."""
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    tmp = uuid.uuid4().hex
    fp32, fused = folder / f".{tmp}-fp32.onnx", folder / f".{tmp}-fused.onnx"
    int8 = folder / f".{tmp}-int8.onnx"
    checksum = folder / f".{tmp}.sha256"
    log.info("exporting the text encoder to %s (once)", path)
    try:
        export_encoder(model, tokenizer, fp32)
        quantize_int8(_fused_or_plain(model, fp32, fused), int8)
        checksum.write_text(sha256_file(int8) + "\n")
        for file in (int8, checksum):
            share_file(file)
        os.replace(int8, path)
        os.replace(checksum, _checksum_file(path))
    finally:
        for file in folder.glob(f".{tmp}*"):
            file.unlink(missing_ok=True)
    return path


def _fused_or_plain(model: nn.Module, plain: Path, fused: Path) -> Path:
    """The fused graph (:func:`fuse_encoder`) when the optimizer fused the attention, else the
    plain export, with a warning (an encoder unlike BERT still gets its int8 matmuls)."""
    config = getattr(model, "config", None)
    if config is None or not hasattr(config, "num_attention_heads"):
        log.warning("%s has no BERT-like config: its int8 file is not fused", type(model).__name__)
        return plain
    counts = fuse_encoder(plain, fused, config)
    if not counts.get("Attention"):
        log.warning("no attention fused in %s (fused %s): its int8 file is not fused",
                    type(model).__name__, counts)  # fmt: skip
        return plain
    log.info("fused %s", counts)
    return fused


def _session(ort: Any, path: Path) -> Any:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # no busy-waiting
    options.intra_op_num_threads = torch.get_num_threads()
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
