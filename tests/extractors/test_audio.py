"""AudioEncoder: real speech prompts, resampling, silence, file I/O and bad input."""

import numpy as np
import pytest
import soundfile
import torch

from mtrec.data import TensorBatcher, load_asterisk_sounds
from mtrec.extractors.audio import AudioEncoder, load_audio
from mtrec.train import fit


@pytest.fixture(scope="module")
def sounds():
    return load_asterisk_sounds()


def test_encode_real_prompts_shape_norm(sounds):
    enc = AudioEncoder(hidden_size=16, max_seconds=1.0, device="cpu")
    paths = sounds[sounds.folder == "digits"].path.tolist()[:6]
    vectors = enc.encode(paths)
    assert vectors.shape == (6, enc.dim) == (6, 32)
    torch.testing.assert_close(vectors.norm(dim=1), torch.ones(6))


def test_silence_folder_is_flagged_never_nan(sounds):
    enc = AudioEncoder(hidden_size=16, max_seconds=1.0, device="cpu")
    silent_paths = sounds[sounds.folder == "silence"].path.tolist()[:2]
    speech = sounds[sounds.folder == "digits"].path.tolist()[:1]
    vectors, silent = enc.encode([*silent_paths, *speech], return_silent=True)
    assert silent.tolist() == [True, True, False]
    assert torch.isfinite(vectors).all()
    assert vectors[:2].abs().sum() == 0
    batch = enc.prepare(silent_paths)
    assert torch.isfinite(batch["features"]).all()
    digital_zero = enc.encode([np.zeros(800, dtype=np.float32)])
    assert torch.isfinite(digital_zero).all()


def test_other_sample_rates_are_resampled(sounds):
    enc = AudioEncoder(hidden_size=16, max_seconds=1.0, device="cpu")
    wave, rate = load_audio(sounds[sounds.folder == "digits"].path.iloc[0])
    assert rate == 8000
    import torchaudio

    up = torchaudio.functional.resample(wave, 8000, 16000)
    a = enc.prepare([wave], sample_rates=8000)
    b = enc.prepare([up], sample_rates=16000)
    assert a["features"].shape == b["features"].shape
    assert torch.equal(a["lengths"], b["lengths"])
    cosine = torch.nn.functional.cosine_similarity(enc.encode(a), enc.encode(b))
    assert cosine.item() > 0.99


def test_stereo_file_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    stereo = rng.normal(0, 0.1, (4000, 2)).astype(np.float32)
    path = tmp_path / "stereo.wav"
    soundfile.write(path, stereo, 16000)
    wave, rate = load_audio(path)
    assert rate == 16000 and wave.shape == (4000,)
    enc = AudioEncoder(hidden_size=8, device="cpu", rnn="lstm", frontend="mfcc")
    assert enc.encode([str(path)]).shape == (1, 16)


def test_bad_input_raises():
    enc = AudioEncoder(hidden_size=8, device="cpu")
    with pytest.raises(ValueError, match="empty"):
        enc.encode([np.zeros(0, dtype=np.float32)])
    with pytest.raises(ValueError, match="NaN"):
        enc.encode([np.full(100, np.nan, dtype=np.float32)])
    with pytest.raises(TypeError, match="wrap one clip"):
        enc.encode(np.zeros(100, dtype=np.float32))
    with pytest.raises(ValueError, match="frontend"):
        AudioEncoder(frontend="wavelet")
    with pytest.raises(ValueError, match=r"features must be \(B, L, 40\)"):
        enc(torch.zeros(1, 10, 3), torch.tensor([10]))


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_training_on_prompts_lowers_loss(sounds):
    torch.manual_seed(0)
    frame = sounds[sounds.folder.isin(["digits", "letters", "phonetic"])]
    labels = torch.tensor(frame.folder.astype("category").cat.codes.to_numpy())
    enc = AudioEncoder(hidden_size=16, max_seconds=1.0, num_classes=3, device="cpu")
    batch = enc.prepare(frame.path.tolist())
    batches = TensorBatcher(
        {"features": batch["features"], "lengths": batch["lengths"], "labels": labels},
        32,
        shuffle=True,
    )
    history = fit(enc, batches, epochs=5, lr=1e-2, progress=False, device="cpu")
    losses = history.frame()["train_loss"].tolist()
    assert losses[-1] < 0.9 * losses[0], losses
