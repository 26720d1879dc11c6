"""Image embeddings from a convolutional network built on torchvision.

The default backbone is a narrow ResNet-18 (He et al., "Deep Residual Learning for Image
Recognition", CVPR 2016): torchvision's ``BasicBlock`` in the [2, 2, 2, 2] layout, widths
(16, 32, 64, 128) instead of (64, 128, 256, 512) and a 3x3 stride-1 stem without max-pooling, so
small images (28x28 digits) train in seconds on a CPU. Any torchvision classification model is
available by name (``"resnet18"``, ``"mobilenet_v3_small"``, ...); its last ``nn.Linear`` is removed
so the encoder returns the pooled features. Pretrained weights: ``weights="imagenet"`` loads
torchvision's ImageNet MobileNetV2 from the data registry (``mtrec data fetch mobilenet-v2``; see
:mod:`mtrec.extractors.image_weights`) and normalises with ImageNet's mean and std; with
``freeze=True`` only a class head trains. Any other backbone takes a weights file
(``.safetensors`` or a ``torch.save`` state dict) or is trained here (``loss`` works with
:func:`mtrec.train.fit`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mtrec.checks import as_tensor, check_int, check_nonempty, check_tensor
from mtrec.extractors.image_weights import (
    IMAGENET,
    IMAGENET_MEAN,
    IMAGENET_STD,
    check_pretrained,
    load_imagenet,
)
from mtrec.utils import get_device

log = logging.getLogger(__name__)

DEFAULT_BACKBONE = "resnet18-small"
SMALL_WIDTHS = (16, 32, 64, 128)  # channels of the four ResNet stages of the default backbone
FLOAT_TOLERANCE = 0.01  # float pixels may leave [0, 1] by this much (resampling overshoot)


def small_resnet18(widths: Sequence[int] = SMALL_WIDTHS, *, stem_stride: int = 2) -> nn.Sequential:
    """A ResNet-18 layout ([2, 2, 2, 2] basic blocks) with the given stage widths for small images.

    Args:
        widths: channels of the four stages (ResNet-18 has 64, 128, 256, 512).
        stem_stride: stride of the 3x3 stem convolution (2 halves every feature map: 4x fewer
            multiply-adds; 28x28 digits become 14, 7, 4, 2-pixel maps).

    Returns:
        A module mapping (B, 3, H, W) images to (B, widths[-1]) pooled features.
    """
    from torchvision.models.resnet import BasicBlock

    def stage(inplanes: int, planes: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or inplanes != planes:
            downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )
        return nn.Sequential(
            BasicBlock(inplanes, planes, stride, downsample), BasicBlock(planes, planes)
        )

    w = list(widths)
    return nn.Sequential(
        nn.Conv2d(3, w[0], 3, stride=stem_stride, padding=1, bias=False),  # (B, w0, H/s, W/s)
        nn.BatchNorm2d(w[0]),
        nn.ReLU(inplace=True),
        stage(w[0], w[0], 1),  # (B, w0, H/s, W/s)
        stage(w[0], w[1], 2),  # (B, w1, H/2s, W/2s)
        stage(w[1], w[2], 2),  # (B, w2, H/4s, W/4s)
        stage(w[2], w[3], 2),  # (B, w3, H/8s, W/8s)
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),  # (B, w3)
    )


def _load_state(path: str | os.PathLike[str]) -> dict[str, Tensor]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image weights file {path} does not exist")
    fix = "pass a file written by ImageEncoder.save (safetensors) or torch.save(state_dict)"
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # SafetensorError, UnpicklingError, KeyError on a text file, ...
        raise ValueError(
            f"{path} is not a readable weights file ({type(error).__name__}: {error}); {fix}"
        ) from error
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{path} holds a {type(state).__name__}; expected a state dict; {fix}")
    return state


def _load_weights(module: nn.Module, state: dict[str, Tensor], path: Any) -> None:
    """``module.load_state_dict(state)`` with an error that names the weights file."""
    try:
        module.load_state_dict(state)
    except RuntimeError as error:
        raise ValueError(
            f"the weights in {path} do not fit this backbone ({str(error).splitlines()[0]}); "
            "build the ImageEncoder with the backbone the file was saved from"
        ) from error


def _read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """An image file as an (H, W, 3) uint8 array (PIL reads PNG, JPEG, ...)."""
    from PIL import Image, UnidentifiedImageError

    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"image file {file} does not exist; check the path")
    try:
        with Image.open(file) as image:
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"{file} is not an image file PIL can read ({error})") from error


def _strip_classifier(model: nn.Module) -> tuple[str, int]:
    """Replace the last ``nn.Linear`` of a classifier by Identity; return its name and input width."""
    last = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            last = name
    if last is None:
        raise ValueError(f"{type(model).__name__} has no nn.Linear classifier to remove")
    parent_name, _, child = last.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    width = int(getattr(parent, child).in_features)
    setattr(parent, child, nn.Identity())
    return last, width


def to_image_batch(images: np.ndarray | Tensor | Sequence[np.ndarray]) -> Tensor:
    """Bring images to (N, 3, H, W) float32 in [0, 1].

    Accepts (N, H, W) grey, (N, H, W, C) channel-last with C in {1, 3, 4}, or (N, C, H, W)
    channel-first; uint8 values are scaled by 1/255. Grey is repeated to three channels; RGBA
    drops its alpha channel. Image file paths (one, or a list) are read with PIL as RGB. A 3-D
    array whose last axis looks like channels, e.g. one (28, 28, 3) image, is refused rather
    than read as 28 grey images (pass ``image[None]``). Integer arrays other than uint8 must hold
    values in [0, 1]; convert 0..255 pixels with ``.astype(np.uint8)``. Float images must hold
    values in [0, 1] (up to ``FLOAT_TOLERANCE`` outside, from resampling): a float image in
    0..255 is refused rather than read as 255 times too bright.
    """
    if isinstance(images, (str, os.PathLike)):
        images = [images]
    if isinstance(images, (list, tuple)):
        check_nonempty(images, "images", fix="pass at least one image")
        arrays = [
            _read_image(image) if isinstance(image, (str, os.PathLike)) else np.asarray(image)
            for image in images
        ]
        shapes = sorted({a.shape for a in arrays})
        if len(shapes) > 1:
            raise ValueError(
                f"images have different shapes {shapes[:4]}; resize them to one size (or encode "
                "them in groups of equal size)"
            )
        images = np.stack(arrays)
    try:
        x = as_tensor(images)
    except (TypeError, ValueError, RuntimeError) as error:
        raise TypeError(
            f"images must be a numeric array or tensor (or image file paths), got "
            f"{type(images).__name__} ({error})"
        ) from error
    if x.dtype == torch.bool or x.is_complex():
        raise TypeError(f"images must hold real pixel values, got dtype {x.dtype}")
    if x.ndim == 3 and x.shape[-1] in (1, 3, 4) and x.shape[-2] not in (1, 3, 4):
        raise ValueError(
            f"images of shape {tuple(x.shape)} are ambiguous: (N, H, W) grey images {x.shape[-1]} "
            "pixels wide, or one (H, W, C) image? Expected (N, H, W), (N, H, W, C) or "
            "(N, C, H, W); pass one colour image as image[None], or grey images as images[:, None]"
        )
    if x.ndim == 3:  # (N, H, W) grey
        x = x.unsqueeze(1)
    elif x.ndim == 4 and x.shape[-1] in (1, 3, 4) and x.shape[1] not in (1, 3, 4):
        x = x.permute(0, 3, 1, 2)  # (N, C, H, W)
    if x.ndim != 4 or x.shape[1] not in (1, 3, 4):
        raise ValueError(
            f"images must be (N, H, W), (N, H, W, C) or (N, C, H, W) with C in 1, 3 or 4; got "
            f"shape {tuple(x.shape)}. Stack single images with images[None] or np.stack(list)"
        )
    if x.shape[0] == 0 or x.shape[-1] < 1 or x.shape[-2] < 1:
        raise ValueError(f"images must be non-empty, got shape {tuple(x.shape)}")
    if not x.is_floating_point() and x.dtype != torch.uint8 and x.numel():
        low, high = int(x.min()), int(x.max())
        if low < 0 or high > 1:
            raise ValueError(
                f"images of dtype {x.dtype} hold values {low}..{high}; pass 0..255 pixels as "
                "uint8 (images.astype(np.uint8)), or floats in [0, 1]"
            )
    was_float = x.is_floating_point()
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    if x.shape[1] == 4:
        x = x[:, :3]
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if not torch.isfinite(x).all():
        raise ValueError("images contain NaN or inf values")
    if was_float:
        low, high = float(x.min()), float(x.max())
        if low < -FLOAT_TOLERANCE or high > 1 + FLOAT_TOLERANCE:
            fix = (
                "they look like 0..255 pixels: divide by 255 (images / 255.0), or pass them as "
                "uint8 (images.astype(np.uint8))"
                if high > 1 + FLOAT_TOLERANCE and low >= -FLOAT_TOLERANCE and high <= 255
                else "rescale them to [0, 1] (the encoder normalises with its own mean and std)"
            )
            raise ValueError(
                f"float images must hold values in [0, 1], got {low:.4g}..{high:.4g}; {fix}"
            )
    return x.contiguous()


class ImageEncoder(nn.Module):
    """CNN image encoder: ``encode`` gives (N, D) L2-normalised vectors.

    Args:
        backbone: ``"resnet18-small"`` (default, D = 128) or a torchvision model name for
            ``torchvision.models.get_model(name, weights=None)`` (D = width of its last layer's
            input, e.g. 512 for ``"resnet18"``, 1280 for ``"mobilenet_v2"``).
        image_size: side the images are resized to (default 28, MNIST's own size; ImageNet
            weights were trained at 224; smaller sizes run faster and see less detail).
        weights: ``"imagenet"`` for the registry's ImageNet weights (``"mobilenet_v2"`` only:
            ``mtrec data fetch mobilenet-v2``), or an optional ``.safetensors`` or ``torch.save``
            state-dict file for the backbone (for a torchvision name: the full classifier's state
            dict, or one written by ``save``).
        freeze: keep the backbone's weights and batch-norm statistics fixed (it stays in eval
            mode, even under ``train()``); only the head trains.
        num_classes: add a linear head of this many classes, used by ``loss`` for training.
        mean, std: per-channel normalisation after scaling to [0, 1] (``None``: ImageNet's for
            ``weights="imagenet"``, else 0.5 and 0.5).
        device: ``None`` for :func:`mtrec.utils.get_device`.
    """

    def __init__(
        self,
        backbone: str = DEFAULT_BACKBONE,
        *,
        image_size: int = 28,
        weights: str | os.PathLike[str] | None = None,
        freeze: bool = False,
        num_classes: int | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        super().__init__()
        from torchvision.transforms import v2

        if image_size < 8:
            raise ValueError(f"image_size must be >= 8, got {image_size}")
        if not isinstance(freeze, bool):
            raise TypeError(f"freeze must be True or False, got {freeze!r}")
        pretrained = isinstance(weights, str) and weights == IMAGENET
        if pretrained:
            check_pretrained(backbone)  # before building: names the backbones that have weights
        self.backbone_name = backbone
        self.image_size = image_size
        if backbone == DEFAULT_BACKBONE:
            self.backbone: nn.Module = small_resnet18()
            self.dim = SMALL_WIDTHS[-1]
            if weights is not None:
                _load_weights(self.backbone, _load_state(weights), weights)
        else:
            import torchvision

            try:
                model = torchvision.models.get_model(backbone, weights=None)
            except ValueError as error:
                raise ValueError(
                    f"unknown backbone {backbone!r}: use {DEFAULT_BACKBONE!r} or a name from "
                    "torchvision.models.list_models(module=torchvision.models)"
                ) from error
            if pretrained:  # every key, the ImageNet classifier's too, before removing it
                load_imagenet(model, backbone)
            removed, self.dim = _strip_classifier(model)
            if weights is not None and not pretrained:  # a full classifier's or a saved state
                state = _load_state(weights)
                _load_weights(
                    model, {k: v for k, v in state.items() if not k.startswith(removed + ".")},
                    weights,
                )  # fmt: skip
            self.backbone = model
        self.frozen = freeze
        self.backbone.requires_grad_(not freeze)
        self.head = nn.Linear(self.dim, num_classes) if num_classes else None
        if mean is None:
            mean = IMAGENET_MEAN if pretrained else (0.5, 0.5, 0.5)
        if std is None:
            std = IMAGENET_STD if pretrained else (0.5, 0.5, 0.5)
        self.transform = v2.Compose(
            [
                v2.Resize((image_size, image_size), antialias=True),
                v2.Normalize(mean=list(mean), std=list(std)),
            ]
        )
        self.to(get_device(None if device is None else str(device)))
        self.train()

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def train(self, mode: bool = True) -> ImageEncoder:
        """Set train mode, but a frozen backbone stays in eval mode (fixed batch-norm statistics)."""
        super().train(mode)
        if self.frozen:
            self.backbone.eval()
        return self

    def preprocess(self, images: np.ndarray | Tensor | Sequence[np.ndarray]) -> Tensor:
        """Raw images (see :func:`to_image_batch`) → (N, 3, S, S) normalised float32 on CPU."""
        return self.transform(to_image_batch(images))

    def forward(self, images: Tensor) -> Tensor:
        """Features of preprocessed images: (B, 3, S, S) → (B, D), not normalised."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(
                f"forward expects preprocessed (B, 3, S, S) images, got {tuple(images.shape)}; "
                "call encoder.preprocess(raw_images) first or use encoder.encode(raw_images)"
            )
        return self.backbone(images)

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """Cross-entropy of the class head.

        Batch keys: ``labels`` (B,) and either ``images`` (B, 3, S, S), preprocessed, or
        ``features`` (B, D) from :meth:`features`, which trains the head alone: for a frozen
        backbone the same loss as from the images, at one backbone pass for all epochs.
        """
        if self.head is None:
            raise ValueError("loss needs a class head: build ImageEncoder(num_classes=K)")
        if "features" in batch:
            x = check_tensor(batch["features"], "batch['features']", shape=(None, self.dim))
            if not len(x):
                raise ValueError("batch['features'] is empty; pass at least one row")
        else:
            x = self(batch["images"])  # (B, D)
        logits = self.head(x.to(self.head.weight.dtype))  # (B, K)
        return F.cross_entropy(logits, batch["labels"].long())

    @torch.no_grad()
    def features(
        self, images: np.ndarray | Tensor | Sequence[np.ndarray], *, batch_size: int = 256
    ) -> Tensor:
        """Raw images → (N, D) float32 backbone features on CPU, not normalised (eval, batched).

        Computed without gradients but outside inference mode, so a head can train on them.
        """
        check_int(batch_size, "batch_size", min=1)
        was_training = self.training
        self.eval()
        x = self.preprocess(images)
        out = [
            self(x[i : i + batch_size].to(self.device)).float().cpu()
            for i in range(0, len(x), batch_size)
        ]
        self.train(was_training)
        return torch.cat(out)

    def encode(
        self, images: np.ndarray | Tensor | Sequence[np.ndarray], *, batch_size: int = 256
    ) -> Tensor:
        """Raw images → (N, D) float32 unit-norm vectors on CPU (eval mode, batched)."""
        return F.normalize(self.features(images, batch_size=batch_size), dim=-1)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the backbone's weights as safetensors (reload with ``weights=path``; the
        normalisation is not saved: pass ``mean`` and ``std`` again, e.g. ImageNet's)."""
        from safetensors.torch import save_file

        state = {k: v.detach().cpu().contiguous() for k, v in self.backbone.state_dict().items()}
        save_file(state, str(path))
