"""ImageEncoder: shapes, training on real digits, weights files, torchvision backbones, bad input."""

import numpy as np
import pytest
import torch

from mtrec.data import TensorBatcher
from mtrec.extractors.image import ImageEncoder, to_image_batch
from mtrec.train import fit


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    data = load_digits()
    images = (data.images * 255 / 16).astype(np.uint8)  # (1797, 8, 8) real handwritten digits
    return images, data.target


def test_encode_shape_and_norm(digits):
    enc = ImageEncoder(image_size=8, device="cpu")
    vectors = enc.encode(digits[0][:10])
    assert vectors.shape == (10, enc.dim) == (10, 128)
    torch.testing.assert_close(vectors.norm(dim=1), torch.ones(10))


def test_channel_conversion():
    grey = np.zeros((2, 8, 8), dtype=np.uint8)
    assert to_image_batch(grey).shape == (2, 3, 8, 8)
    rgba_last = np.full((2, 8, 8, 4), 255, dtype=np.uint8)
    x = to_image_batch(rgba_last)
    assert x.shape == (2, 3, 8, 8) and x.max() == 1.0
    assert to_image_batch(torch.rand(2, 1, 8, 8)).shape == (2, 3, 8, 8)
    enc = ImageEncoder(image_size=12, device="cpu")
    assert enc.preprocess(grey).shape == (2, 3, 12, 12)  # resized


def test_bad_images_raise():
    with pytest.raises(ValueError, match="C in 1, 3 or 4"):
        to_image_batch(np.zeros((2, 5, 8, 8)))
    with pytest.raises(ValueError, match="images must be"):
        to_image_batch(np.zeros((8,)))
    with pytest.raises(ValueError, match="NaN"):
        to_image_batch(np.full((1, 8, 8), np.nan))
    enc = ImageEncoder(image_size=16, device="cpu")
    with pytest.raises(ValueError, match="preprocess"):
        enc(torch.zeros(1, 1, 16, 16))
    with pytest.raises(ValueError, match="num_classes"):
        enc.loss({"images": torch.zeros(1, 3, 16, 16), "labels": torch.zeros(1)})
    with pytest.raises(ValueError, match="unknown backbone"):
        ImageEncoder("no_such_net")


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_training_on_digits_separates_classes(digits):
    torch.manual_seed(0)
    images, labels = digits
    enc = ImageEncoder(image_size=8, num_classes=10, device="cpu")  # native 8x8: fast
    x = enc.preprocess(images[:1200])
    batches = TensorBatcher({"images": x, "labels": torch.tensor(labels[:1200])}, 64, shuffle=True)
    history = fit(enc, batches, epochs=3, lr=3e-3, progress=False, device="cpu")
    losses = history.frame()["train_loss"].tolist()
    assert losses[-1] < losses[0]
    held_out = enc.encode(images[1200:])
    similarity = held_out @ held_out.T
    similarity.fill_diagonal_(-2)
    nearest = similarity.argmax(dim=1).numpy()
    same = (labels[1200:][nearest] == labels[1200:]).mean()
    assert same > 0.8, same  # chance is about 0.1


def test_weights_round_trip(tmp_path, digits):
    torch.manual_seed(0)
    enc = ImageEncoder(image_size=16, device="cpu")
    path = tmp_path / "encoder.safetensors"
    enc.save(path)
    again = ImageEncoder(image_size=16, weights=path, device="cpu")
    torch.testing.assert_close(enc.encode(digits[0][:4]), again.encode(digits[0][:4]))


def test_torchvision_backbone_by_name_with_full_state_dict(tmp_path):
    import torchvision

    reference = torchvision.models.get_model("resnet18", weights=None).eval()
    path = tmp_path / "resnet18.pt"
    torch.save(reference.state_dict(), path)  # e.g. user-supplied ImageNet weights
    enc = ImageEncoder("resnet18", image_size=32, weights=path, device="cpu")
    assert enc.dim == 512
    x = torch.rand(2, 3, 32, 32)
    reference.fc = torch.nn.Identity()
    enc.eval()
    with torch.no_grad():
        torch.testing.assert_close(enc(x), reference(x))
