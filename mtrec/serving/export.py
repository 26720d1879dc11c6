"""Serving outside Python eager mode: export a click model to ONNX and answer with onnxruntime.

:func:`export_onnx` writes a model that maps feature tensors to (B, T) logits (the distilled
:class:`~mtrec.models.student.StudentMLP`, the :class:`~mtrec.models.multitask.mmoe.MMoE` scorer,
any model of the click family whose ``config.features`` declares its inputs) to an ONNX file with
a dynamic batch dimension, and checks it against torch (max abs difference of the logits).
:class:`OnnxScorer` loads the file in an onnxruntime session and keeps the click family's
contract: ``forward(batch) -> logits`` and ``predict(batch) -> probabilities``, both (B, T).

onnxruntime, onnx and onnxscript are the optional ``serve`` extra (``pip install 'mtrec[serve]'``)
and are imported only inside these functions, so the core package stays torch-only.

Example:
    >>> path = export_onnx(student, "student.onnx", example=batch)  # doctest: +SKIP
    >>> OnnxScorer(path).predict(batch)                              # (B, T)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from mtrec.checks import check_finite, check_float, check_ids, check_int, check_tensor
from mtrec.data.schema import DenseFeature, SequenceFeature, SparseFeature, TextFeature

log = logging.getLogger(__name__)

PARITY_ATOL = 1e-5  # max abs difference of the logits, onnxruntime vs torch (fp32)
OPSET = 18


def _require(module: str) -> Any:
    """Import an optional serving dependency, or say how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"ONNX export and serving need {module}; install the serve extra: "
            "pip install 'mtrec[serve]' (onnxruntime, onnx, onnxscript)"
        ) from error


def input_names(model: nn.Module) -> list[str]:
    """The batch keys ``model`` reads: the names of its ``config.features``, in order."""
    features = getattr(getattr(model, "config", None), "features", None)
    if not features:
        raise TypeError(
            f"{type(model).__name__} has no config.features: export_onnx needs a click-family "
            "model whose features are declared (StudentMLP, MMoE, PLE, ...)"
        )
    return [feature.name for feature in features]


def example_batch(model: nn.Module, batch_size: int = 2) -> dict[str, Tensor]:
    """A seeded batch with every feature ``model`` reads, for tracing (ids in vocabulary range)."""
    input_names(model)
    check_int(batch_size, "batch_size", min=1)
    g = torch.Generator().manual_seed(0)
    batch: dict[str, Tensor] = {}
    for feature in model.config.features:
        if isinstance(feature, SequenceFeature):
            shape = (batch_size, feature.max_len)
            batch[feature.name] = torch.randint(1, feature.vocab_size, shape, generator=g)
        elif isinstance(feature, SparseFeature):
            shape = (batch_size,)
            batch[feature.name] = torch.randint(1, feature.vocab_size, shape, generator=g)
        elif isinstance(feature, TextFeature):
            batch[feature.name] = torch.randn(batch_size, feature.dim, generator=g)
        elif isinstance(feature, DenseFeature):
            shape = (batch_size, feature.dim) if feature.dim > 1 else (batch_size,)
            batch[feature.name] = torch.randn(shape, generator=g)
        else:
            raise TypeError(
                f"example_batch does not know how to draw feature {feature!r}; pass example="
            )
    return batch


def fingerprint(model: nn.Module) -> dict[str, Any]:
    """What identifies a model's export: its class, parameter count, the sha256 of its tensor
    names and shapes (the architecture) and of its weights (the trained values)."""
    shapes, weights = hashlib.sha256(), hashlib.sha256()
    count = sum(p.numel() for p in model.parameters())
    for key, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        shapes.update(f"{key}:{tuple(tensor.shape)};".encode())
        weights.update(f"{key}:{tensor.dtype}:".encode())
        weights.update(tensor.view(torch.uint8).numpy().tobytes())
    return {"model": type(model).__name__, "parameters": count,
            "shapes_sha256": shapes.hexdigest(), "weights_sha256": weights.hexdigest()}  # fmt: skip


class _Positional(nn.Module):
    """The model with positional tensor inputs (ONNX graphs take named tensors, not a dict)."""

    def __init__(self, model: nn.Module, names: Sequence[str]) -> None:
        super().__init__()
        self.model, self.names = model, list(names)

    def forward(self, *inputs: Tensor) -> tuple[Tensor, Tensor]:
        logits = self.model(dict(zip(self.names, inputs)))  # (B, T)
        return logits, torch.sigmoid(logits)  # probabilities in the graph: one call per request


@contextlib.contextmanager
def _quiet_export() -> Iterator[None]:
    """The exporter's progress prints and warnings, hidden (they are not the user's business)."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    example: dict[str, Tensor] | None = None,
    check: bool = True,
    atol: float = PARITY_ATOL,
) -> Path:
    """Export ``model`` (features → (B, T) logits) to ONNX with a dynamic batch dimension.

    Args:
        model: a click-family model whose ``config.features`` declares its inputs; it is traced
            in eval mode on the CPU (its own mode and device are restored afterwards).
        path: the ``.onnx`` file to write; ``<path>.json`` records inputs, outputs and tasks.
        example: a batch with every feature key (default: :func:`example_batch`).
        check: run the file in onnxruntime on ``example`` and a batch of another size, and raise
            when a logit differs from torch's by more than ``atol``.
        atol: the parity tolerance.

    Returns:
        The path of the written ONNX file.
    """
    _require("onnxscript")
    names = input_names(model)
    atol = check_float(atol, "atol", min=0.0)
    if not any(True for _ in model.parameters()):
        raise TypeError(f"{type(model).__name__} has no parameters: nothing to export")
    example = example_batch(model, 3) if example is None else example
    if not isinstance(example, dict):
        raise TypeError(f"example must be a dict of feature tensors, got {type(example).__name__}")
    missing = [name for name in names if name not in example]
    if missing:
        raise KeyError(f"example lacks the feature keys {missing}; it has {sorted(example)}")
    sizes = set()
    for name in names:
        check_tensor(example[name], f"example[{name!r}]")
        check_finite(example[name], f"example[{name!r}]")
        if example[name].ndim == 0 or example[name].shape[0] < 1:
            raise ValueError(f"example[{name!r}] needs a batch dimension with >= 1 row")
        sizes.add(example[name].shape[0])
    if len(sizes) > 1:
        raise ValueError(f"example tensors must share their batch size, got sizes {sorted(sizes)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    training, device = model.training, next(model.parameters()).device
    model.eval().cpu()
    try:
        inputs = tuple(example[name].cpu() for name in names)
        batch = torch.export.Dim("batch", min=1)
        shapes = [{0: batch} for _ in names]
        with _quiet_export():
            program = torch.onnx.export(
                _Positional(model, names),
                inputs,
                input_names=names,
                output_names=["logits", "probabilities"],
                dynamic_shapes=(tuple(shapes),),  # one entry: the *inputs tuple of _Positional
                opset_version=OPSET,
                dynamo=True,
                optimize=True,
                verbose=False,
            )
            program.save(str(path))
        meta = {
            "inputs": names,
            "outputs": ["logits", "probabilities"],
            "task_names": list(getattr(model, "task_names", []) or []),
            **fingerprint(model),  # check_parity tells another model from a faithless export
            # id vocabularies, so OnnxScorer can refuse an id past them with a clear message
            "vocab_sizes": {
                f.name: int(f.vocab_size)
                for f in model.config.features
                if isinstance(f, (SparseFeature, SequenceFeature))
            },
        }
        path.with_suffix(path.suffix + ".json").write_text(json.dumps(meta, indent=1))
        if check:
            check_parity(model, path, example, atol=atol)
    finally:
        model.to(device).train(training)
    return path


def check_parity(
    model: nn.Module, path: str | os.PathLike[str], batch: dict[str, Tensor], *, atol: float
) -> float:
    """Max abs logit difference of onnxruntime vs torch on ``batch`` and on it doubled (another
    batch size: the dynamic axis); raises ``AssertionError`` above ``atol``.

    ``model`` is first compared with the sidecar's fingerprint of the exported one (class,
    parameter count, tensor shapes: ``ValueError`` when another architecture is passed), and a
    gap is blamed on the exporter only when the weights are the exported ones too."""
    atol = check_float(atol, "atol", min=0.0)
    scorer = OnnxScorer(path)
    exported, ours = scorer.meta, fingerprint(model)
    same = {key: exported.get(key) == ours[key] for key in ("model", "parameters", "shapes_sha256")}
    if exported.get("inputs") != input_names(model) or not all(same.values()):
        raise ValueError(
            f"the {ours['model']} passed ({ours['parameters']} parameters, inputs "
            f"{input_names(model)}) is not the model exported to {path} "
            f"({exported.get('model')}, {exported.get('parameters')} parameters, inputs "
            f"{exported.get('inputs')}; differing: {[k for k, ok in same.items() if not ok]}): "
            "is this the model you exported? Pass that model, or export this one with "
            "export_onnx(model, path)"
        )
    doubled = {key: torch.cat([value, value.flip(0)]) for key, value in batch.items()}
    worst = 0.0
    for sample in (batch, doubled):
        with torch.no_grad():
            expected = model({name: sample[name].cpu() for name in scorer.input_names})
        worst = max(worst, (scorer(sample) - expected).abs().max().item())
    if worst > atol and exported.get("weights_sha256") != ours["weights_sha256"]:
        raise AssertionError(
            f"onnxruntime logits differ from torch by {worst:.2e} > atol={atol:g} for {path}, "
            "and the model's weights differ from the ones exported (their sha256 does not "
            "match the sidecar's): is this the model you exported? Its weights changed since "
            "(more training, another seed); export it again with export_onnx(model, path)"
        )
    if worst > atol:
        raise AssertionError(
            f"onnxruntime logits differ from torch by {worst:.2e} > atol={atol:g} for {path}, "
            "with the very weights that were exported: the export is not faithful (an op "
            "exported differently); report it with the model"
        )
    log.info("%s: onnxruntime vs torch max abs logit difference %.2e", path, worst)
    return worst


_REEXPORT = "export the model again with export_onnx(model, '{path}'), which writes both files"


def _sidecar(path: Path) -> dict[str, Any]:
    """The ``<path>.json`` export_onnx wrote next to ``path``, checked (raises ValueError)."""
    sidecar = path.with_suffix(path.suffix + ".json")
    if not sidecar.is_file():
        raise ValueError(
            f"{path} has no sidecar {sidecar.name}: it names the model's inputs, tasks and id "
            "vocabularies, without which out-of-range ids would be scored silently as other "
            f"ids; copy the sidecar along with the .onnx file, or {_REEXPORT.format(path=path)}"
        )
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(
            f"{sidecar} is not valid JSON ({error}); {_REEXPORT.format(path=path)}"
        ) from error
    if not isinstance(meta, dict) or not isinstance(meta.get("vocab_sizes"), dict):
        raise ValueError(
            f"{sidecar} must be a JSON object with vocab_sizes (written by an older mtrec or "
            f"edited); {_REEXPORT.format(path=path)}"
        )
    return meta


class OnnxScorer:
    """An exported click model served by onnxruntime: ``forward``/``predict`` as in torch.

    Args:
        path: an ONNX file written by :func:`export_onnx`; its ``.json`` sidecar (inputs, tasks,
            id vocabularies) must lie next to it.
        threads: onnxruntime intra-op threads (``None``: its default, all cores).
    """

    def __init__(self, path: str | os.PathLike[str], *, threads: int | None = None) -> None:
        ort = _require("onnxruntime")
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(
                f"no ONNX file at {self.path}; write one with export_onnx(model, path)"
            )
        if threads is not None:
            check_int(threads, "threads", min=0)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only
        # no busy-waiting threads after a call: they would steal the cores torch (or the rest of
        # the server) runs on, and slow every other measurement of the process
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads is not None:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(
            str(self.path), options, providers=["CPUExecutionProvider"]
        )
        self.input_names = [node.name for node in self.session.get_inputs()]
        self._dtypes = {
            node.name: np.int64 if "int64" in node.type else np.float32
            for node in self.session.get_inputs()
        }
        self._shapes = {node.name: list(node.shape) for node in self.session.get_inputs()}
        self.meta = _sidecar(self.path)
        self.task_names: tuple[str, ...] = tuple(self.meta.get("task_names", ()))
        self._vocab: dict[str, int] = dict(self.meta["vocab_sizes"])
        unchecked = [n for n in self.input_names if self._dtypes[n] == np.int64 and
                     not isinstance(self._vocab.get(n), int)]  # fmt: skip
        if unchecked:
            raise ValueError(
                f"{self.path}.json has no vocab_sizes for the id inputs {unchecked}, so "
                f"out-of-range ids could not be refused; {_REEXPORT.format(path=self.path)}"
            )

    def __repr__(self) -> str:
        return f"OnnxScorer({self.path.name!r}, inputs={self.input_names})"

    def _feeds(self, batch: dict[str, Tensor]) -> dict[str, np.ndarray]:
        if not isinstance(batch, dict):
            raise TypeError(f"batch must be a dict of feature tensors, got {type(batch).__name__}")
        missing = [name for name in self.input_names if name not in batch]
        if missing:
            raise KeyError(
                f"batch lacks the feature keys {missing} the exported model reads; it has "
                f"{sorted(batch)}"
            )
        sizes = set()
        for name in self.input_names:
            value = check_tensor(batch[name], f"batch[{name!r}]")
            want = self._shapes[name]
            ok = value.ndim == len(want) and all(
                not isinstance(w, int) or w == got for got, w in zip(value.shape, want)
            )
            if not ok:
                raise ValueError(
                    f"batch[{name!r}] must have shape {tuple(want)}, got {tuple(value.shape)}"
                )
            if self._dtypes[name] == np.int64:
                check_ids(value, f"batch[{name!r}]", self._vocab.get(name))
            else:
                check_finite(value, f"batch[{name!r}]")
            sizes.add(value.shape[0] if value.ndim else None)
        if len(sizes) > 1:
            raise ValueError(f"batch tensors must share their batch size, got {sorted(sizes)}")
        return {
            name: np.ascontiguousarray(batch[name].detach().cpu().numpy(), self._dtypes[name])
            for name in self.input_names
        }

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        """Feature keys → (B, T) logits (float32, CPU)."""
        (logits,) = self.session.run(["logits"], self._feeds(batch))
        return torch.from_numpy(logits)

    __call__ = forward

    def predict(self, batch: dict[str, Tensor]) -> Tensor:
        """(B, T) probabilities, as the torch model's ``predict`` (the graph's sigmoid output)."""
        (probabilities,) = self.session.run(["probabilities"], self._feeds(batch))
        return torch.from_numpy(probabilities)
