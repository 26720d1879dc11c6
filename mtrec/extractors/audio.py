"""Audio embeddings: a torchaudio log-mel or MFCC front end followed by a recurrent encoder.

A strided 1-D convolution halves the frame rate, a (bidirectional) GRU or LSTM reads the packed
sequence (Cho et al., "Learning Phrase Representations using RNN Encoder-Decoder", EMNLP 2014;
Hochreiter & Schmidhuber, "Long Short-Term Memory", Neural Computation 1997), and the outputs are
mean-pooled over real frames. Audio is read with ``soundfile`` (torchaudio's own loader needs
TorchCodec/FFmpeg), mixed to mono and resampled to the encoder's rate. Clips whose RMS is below
``silence_rms`` are flagged silent and encode to the zero vector (never NaN); empty clips raise.
Clips shorter than half an FFT window (a few samples) are zero-padded to it; clips too loud for
float32 power spectra (amplitudes near 1e18 and above) raise and say to scale them to [-1, 1].
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from mtrec.checks import check_int, check_nonempty
from mtrec.utils import get_device

log = logging.getLogger(__name__)

Clip = np.ndarray | Tensor


def load_audio(path: str | os.PathLike[str]) -> tuple[Tensor, int]:
    """Read a sound file with soundfile: (T,) float32 mono in [-1, 1] and its sample rate."""
    import soundfile

    file = Path(path).expanduser()
    if not file.is_file():
        kind = "is a folder, not a sound file" if file.is_dir() else "does not exist"
        raise FileNotFoundError(f"audio file {file} {kind}; check the path (a .wav file)")
    try:
        data, rate = soundfile.read(str(file), dtype="float32", always_2d=True)  # (T, C)
    except (RuntimeError, OSError) as error:  # soundfile's LibsndfileError is a RuntimeError
        raise ValueError(
            f"{file} is not a sound file soundfile can read ({error}); pass a WAV/FLAC/OGG file "
            "or the waveform as an array"
        ) from error
    return torch.from_numpy(data.mean(axis=1)), int(rate)


class AudioEncoder(nn.Module):
    """Front end + RNN encoder: ``encode`` gives (N, D) unit-norm vectors, D = hidden (x2 if bi).

    Args:
        sample_rate: rate the front end works at; other rates are resampled to it.
        frontend: ``"mel"`` (log-mel energies) or ``"mfcc"``.
        n_mels: mel bands (also the MFCC filterbank size).
        n_mfcc: coefficients kept when ``frontend="mfcc"``.
        n_fft: FFT size in samples (256 = 32 ms at 8 kHz).
        hop_length: samples between frames (160 = 20 ms at 8 kHz).
        hidden_size: RNN width per direction.
        num_layers: stacked RNN layers.
        rnn: ``"gru"`` or ``"lstm"``.
        bidirectional: read the clip both ways.
        max_seconds: clips are cut to their first ``max_seconds`` (bounds memory and time).
        silence_rms: clips with a lower RMS amplitude are flagged silent (1e-3 is -60 dBFS).
        num_classes: add a linear head of this many classes for ``loss``.
        device: ``None`` for :func:`mtrec.utils.get_device`.
    """

    def __init__(
        self,
        *,
        sample_rate: int = 8000,
        frontend: str = "mel",
        n_mels: int = 40,
        n_mfcc: int = 20,
        n_fft: int = 256,
        hop_length: int = 160,
        hidden_size: int = 64,
        num_layers: int = 1,
        rnn: str = "gru",
        bidirectional: bool = True,
        max_seconds: float = 4.0,
        silence_rms: float = 1e-3,
        num_classes: int | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        super().__init__()
        import torchaudio

        if frontend not in ("mel", "mfcc"):
            raise ValueError(f"frontend must be 'mel' or 'mfcc', got {frontend!r}")
        if rnn not in ("gru", "lstm"):
            raise ValueError(f"rnn must be 'gru' or 'lstm', got {rnn!r}")
        if sample_rate <= 0 or max_seconds <= 0:
            raise ValueError(
                f"sample_rate and max_seconds must be > 0: {sample_rate}, {max_seconds}"
            )
        self.sample_rate = sample_rate
        self.frontend = frontend
        self.hop_length = hop_length
        self.min_samples = n_fft // 2 + 1  # the spectrogram's reflect padding needs this many
        self.max_samples = int(round(max_seconds * sample_rate))
        self.silence_rms = silence_rms
        mel_kwargs = {"n_fft": n_fft, "hop_length": hop_length, "n_mels": n_mels}
        if frontend == "mel":
            self.spectrogram: nn.Module = torchaudio.transforms.MelSpectrogram(
                sample_rate, **mel_kwargs
            )
            self.num_features = n_mels
        else:
            self.spectrogram = torchaudio.transforms.MFCC(
                sample_rate, n_mfcc=n_mfcc, log_mels=True, melkwargs=mel_kwargs
            )
            self.num_features = n_mfcc
        self.conv = nn.Conv1d(self.num_features, hidden_size, 3, stride=2, padding=1)
        rnn_class = nn.GRU if rnn == "gru" else nn.LSTM
        self.rnn = rnn_class(
            hidden_size, hidden_size, num_layers, batch_first=True, bidirectional=bidirectional
        )
        self.dim = hidden_size * (2 if bidirectional else 1)
        self.head = nn.Linear(self.dim, num_classes) if num_classes else None
        self.to(get_device(None if device is None else str(device)))

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def _waves(self, clips: Sequence[Clip | str], sample_rates: int | Sequence[int] | None):
        """Clips (arrays, tensors or file paths) → mono float32 tensors at ``self.sample_rate``."""
        import torchaudio

        if isinstance(clips, (np.ndarray, Tensor)) and np.ndim(clips) == 1:
            raise TypeError("pass a sequence of clips; wrap one clip as [clip]")
        if isinstance(clips, (str, os.PathLike)):
            raise TypeError("pass a sequence of clips; wrap one file path as [path]")
        check_nonempty(clips, "clips", fix="pass at least one waveform or sound-file path")
        rates = (
            [sample_rates] * len(clips)
            if sample_rates is None or isinstance(sample_rates, int)
            else list(sample_rates)
        )
        if len(rates) != len(clips):
            raise ValueError(f"{len(clips)} clips but {len(rates)} sample_rates")
        waves = []
        for position, (clip, rate) in enumerate(zip(clips, rates)):
            if isinstance(clip, (str, os.PathLike)):
                wave, rate = load_audio(clip)
            else:
                try:
                    wave = torch.as_tensor(
                        np.asarray(clip) if not isinstance(clip, Tensor) else clip
                    ).float()
                except (TypeError, ValueError, RuntimeError) as error:
                    raise TypeError(
                        f"clip {position} must be a waveform (a 1-D/2-D array of numbers) or a "
                        f"file path, got {type(clip).__name__} ({error})"
                    ) from error
                if wave.ndim == 2:  # (T, C) or (C, T): average the smaller axis
                    wave = wave.mean(dim=int(wave.shape[0] > wave.shape[1]))
            rate = self.sample_rate if rate is None else check_int(rate, "sample rate", min=1)
            if wave.ndim != 1 or wave.numel() == 0:
                raise ValueError(
                    f"clip {position} is empty or not 1-D/2-D audio (shape {tuple(wave.shape)}); "
                    "drop empty clips before encoding"
                )
            if not torch.isfinite(wave).all():
                raise ValueError(f"clip {position} contains NaN or inf samples")
            if rate != self.sample_rate:
                keep = int(np.ceil(self.max_samples * rate / self.sample_rate))
                wave = torchaudio.functional.resample(wave[:keep], rate, self.sample_rate)
            waves.append(wave[: self.max_samples])
        return waves

    def prepare(
        self, clips: Sequence[Clip | str], *, sample_rates: int | Sequence[int] | None = None
    ) -> dict[str, Tensor]:
        """Clips → a batch dict on CPU.

        Args:
            clips: N waveforms ((T,) or (T, C) arrays/tensors) or sound-file paths.
            sample_rates: their rate(s); ``None`` means ``self.sample_rate`` (files carry theirs).

        Returns:
            ``features`` (N, L, F) per-clip standardised log-mel/MFCC frames (zero-padded),
            ``lengths`` (N,) real frames per clip, ``silent`` (N,) bool.
        """
        waves = self._waves(clips, sample_rates)
        samples = torch.tensor([len(w) for w in waves])
        rms = torch.stack([w.pow(2).mean().sqrt() for w in waves])  # (N,)
        # clips shorter than half a window are zero-padded (reflect padding needs that length)
        padded = torch.zeros(len(waves), max(int(samples.max()), self.min_samples))
        for row, wave in enumerate(waves):
            padded[row, : len(wave)] = wave
        with torch.no_grad():
            frames = self.spectrogram(padded.to(self.device)).cpu()  # (N, F, L)
        if self.frontend == "mel":
            frames = torch.log(frames + 1e-6)
        loud = (~torch.isfinite(frames).flatten(1).all(dim=1) | ~torch.isfinite(rms)).nonzero()
        if len(loud):
            rows = loud.flatten().tolist()
            peak = max(float(waves[r].abs().max()) for r in rows)
            raise ValueError(
                f"clips {rows[:5]} are too loud for float32 spectra (peak amplitude {peak:.3g}); "
                "scale each clip to [-1, 1], e.g. clip / abs(clip).max()"
            )
        frames = frames.transpose(1, 2)  # (N, L, F)
        lengths = (samples // self.hop_length + 1).clamp(max=frames.shape[1])  # center=True
        mask = torch.arange(frames.shape[1])[None, :] < lengths[:, None]  # (N, L)
        weights = mask.unsqueeze(-1).float()  # (N, L, 1)
        count = weights.sum(dim=1, keepdim=True)  # (N, 1, 1)
        mean = (frames * weights).sum(dim=1, keepdim=True) / count  # (N, 1, F)
        var = ((frames - mean).pow(2) * weights).sum(dim=1, keepdim=True) / count
        features = (frames - mean) / var.sqrt().clamp(min=1e-3) * weights  # (N, L, F)
        return {"features": features, "lengths": lengths, "silent": rms < self.silence_rms}

    def forward(self, features: Tensor, lengths: Tensor) -> Tensor:
        """Encode frames: features (B, L, F), lengths (B,) → (B, D) mean of RNN outputs."""
        if features.ndim != 3 or features.shape[-1] != self.num_features:
            raise ValueError(
                f"features must be (B, L, {self.num_features}), got {tuple(features.shape)}; "
                "build them with encoder.prepare(clips)"
            )
        x = F.relu(self.conv(features.transpose(1, 2))).transpose(1, 2)  # (B, L/2, D_h)
        steps = ((lengths.cpu() - 1) // 2 + 1).clamp(min=1, max=x.shape[1])  # (B,)
        packed = pack_padded_sequence(x, steps, batch_first=True, enforce_sorted=False)
        out, _ = self.rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])  # (B, L/2, D)
        mask = (torch.arange(x.shape[1]) < steps[:, None]).to(out.device)  # (B, L/2)
        return (out * mask.unsqueeze(-1)).sum(1) / steps.to(out.device)[:, None]  # (B, D)

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """Cross-entropy of the class head. Keys: ``features``, ``lengths``, ``labels`` (B,)."""
        if self.head is None:
            raise ValueError("loss needs a class head: build AudioEncoder(num_classes=K)")
        logits = self.head(self(batch["features"], batch["lengths"]))  # (B, K)
        return F.cross_entropy(logits, batch["labels"].long())

    @torch.inference_mode()
    def encode(
        self,
        clips: Sequence[Clip | str] | dict[str, Tensor],
        *,
        sample_rates: int | Sequence[int] | None = None,
        batch_size: int = 64,
        return_silent: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Clips (or a ``prepare`` dict) → (N, D) float32 unit-norm vectors on CPU.

        Silent clips get the zero vector (and a warning); ``return_silent=True`` also returns the
        (N,) bool flags.
        """
        check_int(batch_size, "batch_size", min=1)
        batch = clips if isinstance(clips, dict) else self.prepare(clips, sample_rates=sample_rates)
        was_training = self.training
        self.eval()
        out = []
        for start in range(0, len(batch["lengths"]), batch_size):
            feats = batch["features"][start : start + batch_size].to(self.device)
            out.append(self(feats, batch["lengths"][start : start + batch_size]).float().cpu())
        self.train(was_training)
        vectors = F.normalize(torch.cat(out), dim=-1)
        silent = batch["silent"]
        if silent.any():
            log.warning("%d of %d clips are silent: zero vectors", int(silent.sum()), len(silent))
            vectors[silent] = 0.0
        return (vectors, silent) if return_silent else vectors
