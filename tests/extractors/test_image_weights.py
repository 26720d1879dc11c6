"""ImageNet MobileNetV2 from the registry: torchvision's outputs, a real photo, frozen training.

The tests need the fetched weights (``mtrec data fetch mobilenet-v2``, which ``make test`` runs).
"""

import numpy as np
import pytest
import torch

from mtrec.data import TensorBatcher, registry
from mtrec.extractors.image import ImageEncoder
from mtrec.extractors.image_weights import IMAGENET_MEAN, IMAGENET_STD, PRETRAINED
from mtrec.train import fit

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def imagenet_state():
    """torchvision's state dict, read straight from the cached file (no mtrec code)."""
    path = registry.path(*PRETRAINED["mobilenet_v2"])
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def photo():
    """A real photograph shipped with scikit-learn, the Summer Palace in Beijing: its central
    (427, 427, 3) square (the encoder resizes without keeping the aspect ratio; torchvision's
    ImageNet evaluation crops the centre too)."""
    from sklearn.datasets import load_sample_image

    image = load_sample_image("china.jpg")  # (427, 640, 3) uint8
    height, width, _ = image.shape
    left = (width - height) // 2
    return image[:, left : left + height]


def test_pretrained_encoder_equals_torchvision_with_the_same_weights(imagenet_state):
    import torchvision

    reference = torchvision.models.mobilenet_v2(weights=None)
    reference.load_state_dict(imagenet_state)  # strict: every key, the classifier's too
    reference.classifier = torch.nn.Identity()
    reference.eval()
    enc = ImageEncoder("mobilenet_v2", weights="imagenet", image_size=64, device="cpu")
    assert enc.dim == 1280
    image = np.random.default_rng(0).integers(0, 256, (1, 64, 64, 3), dtype=np.uint8)
    x = enc.preprocess(image)  # (1, 3, 64, 64), no resize: the side is already 64
    mean, std = (
        torch.tensor(IMAGENET_MEAN)[:, None, None],
        torch.tensor(IMAGENET_STD)[:, None, None],
    )
    by_hand = (torch.from_numpy(image[0]).permute(2, 0, 1).float() / 255 - mean) / std
    torch.testing.assert_close(x[0], by_hand)
    with torch.no_grad():
        expected = reference(x)
    torch.testing.assert_close(enc.features(image), expected)
    torch.testing.assert_close(enc.encode(image), torch.nn.functional.normalize(expected, dim=-1))


def test_pretrained_encoder_recognises_a_real_photo(imagenet_state, photo):
    """The ImageNet classifier on the encoder's features names the photo's building a palace."""
    from torchvision.models import MobileNet_V2_Weights

    categories = MobileNet_V2_Weights.IMAGENET1K_V1.meta["categories"]  # 1,000 names
    enc = ImageEncoder("mobilenet_v2", weights="imagenet", image_size=224, device="cpu")
    features = enc.features(photo[None])  # (1, 1280)
    logits = (
        features @ imagenet_state["classifier.1.weight"].T + imagenet_state["classifier.1.bias"]
    )
    probabilities = logits.softmax(-1)[0]  # (1000,)
    top = probabilities.topk(3).indices.tolist()
    assert categories[top[0]] == "palace", [categories[i] for i in top]
    assert probabilities[top[0]] > 0.4, probabilities[top[0]]  # 1 / 1000 by chance
    untrained = ImageEncoder("mobilenet_v2", image_size=224, device="cpu")  # random weights
    assert not torch.allclose(untrained.features(photo[None]), features)


def test_default_normalisation_stays_half_without_imagenet_weights():
    enc = ImageEncoder("mobilenet_v2", image_size=32, device="cpu")
    grey = np.full((1, 32, 32), 255, dtype=np.uint8)
    torch.testing.assert_close(enc.preprocess(grey), torch.ones(1, 3, 32, 32))  # (1 - 0.5) / 0.5
    mine = ImageEncoder("mobilenet_v2", weights="imagenet", image_size=32, mean=(0, 0, 0),
                        std=(1, 1, 1), device="cpu")  # fmt: skip
    torch.testing.assert_close(mine.preprocess(grey), torch.ones(1, 3, 32, 32))  # explicit wins


def test_freeze_trains_only_the_head_and_keeps_batch_norm_statistics():
    torch.manual_seed(0)
    enc = ImageEncoder("mobilenet_v2", weights="imagenet", freeze=True, num_classes=3,
                       image_size=32, device="cpu")  # fmt: skip
    trainable = [name for name, p in enc.named_parameters() if p.requires_grad]
    assert trainable == ["head.weight", "head.bias"]
    enc.train()
    assert enc.training and enc.head.training and not enc.backbone.training
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    images = np.random.default_rng(0).integers(0, 256, (24, 32, 32, 3), dtype=np.uint8)
    batches = TensorBatcher(
        {"images": enc.preprocess(images), "labels": torch.arange(24) % 3}, 8, shuffle=True
    )
    fit(enc, batches, epochs=2, lr=1e-2, progress=False, device="cpu")
    after = enc.state_dict()
    changed = sorted(k for k in before if not torch.equal(before[k], after[k]))
    assert changed == ["head.bias", "head.weight"]  # running means and variances included
    assert not enc.backbone.training


def test_head_trains_on_precomputed_features_like_on_images():
    """``features`` in the batch: one backbone pass; with a frozen backbone the same loss."""
    torch.manual_seed(0)
    enc = ImageEncoder("mobilenet_v2", weights="imagenet", freeze=True, num_classes=4,
                       image_size=32, device="cpu")  # fmt: skip
    images = np.random.default_rng(1).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    from_images = enc.loss({"images": enc.preprocess(images), "labels": labels})
    from_features = enc.loss({"features": enc.features(images), "labels": labels})
    torch.testing.assert_close(from_images, from_features)
    from_features.backward()  # the features are plain tensors, usable for training
    assert enc.head.weight.grad is not None


def test_unfrozen_pretrained_backbone_trains():
    enc = ImageEncoder("mobilenet_v2", weights="imagenet", num_classes=2, image_size=32,
                       device="cpu")  # fmt: skip
    assert all(p.requires_grad for p in enc.parameters())
    enc.train()
    assert enc.backbone.training
