"""Paired augmentation of ECG training windows, on torch tensors (B, 1, T).

Every transform is called as the training loop calls augmentation,
``transform(inputs, targets, generator) -> (inputs, targets)``:
- inputs: float (B, 1, T) normalised ECG windows (`dlcc.ecg.preprocess.normalise`);
- targets: float (B, K, T) heatmaps (`dlcc.ecg.preprocess.heatmap`), K = 1 usually;
- generator: a torch.Generator; every draw comes from it, one per sample, so a generator
  seeded the same way gives the same batch again (resume is exact).

Time moves (random_crop, time_shift) move inputs and targets together; the others change
the inputs only (a flipped or noisy beat is still a beat at the same sample). Rates are
in Hz of the internal rate FS (250 Hz). A recipe lists them like the image transforms
(`dlcc.training.transforms.build_entries`), random_crop first when present::

    augment: [{random_crop: {size: 1800}}, polarity_flip, amplitude_scale,
              {noise: {white: 0.05, band: 0.1}}, baseline_wander, motion_burst, time_shift]

This is the one module of `dlcc.ecg` that imports torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from dlcc.ecg.preprocess import FS
from dlcc.training.paired_transforms import PairedCompose
from dlcc.training.transforms import TransformError, build_entries


def check_pair(inputs, targets, generator, who: str) -> None:
    """Raise TransformError unless inputs (B, 1, T) and targets (B, K, T) are float
    tensors of the same B and T, and generator a torch.Generator."""
    for name, batch in (("inputs", inputs), ("targets", targets)):
        if not isinstance(batch, torch.Tensor) or batch.dim() != 3:
            received = tuple(batch.shape) if isinstance(batch, torch.Tensor) else type(batch)
            raise TransformError(
                f"{who}: expected {name} as a batch of windows (B, C, T), received "
                f"{received}. Add axes with x[:, None, :] for (B, T) windows."
            )
        if not batch.is_floating_point():
            raise TransformError(
                f"{who}: expected floating-point {name}, received {batch.dtype}; use .float()."
            )
    if inputs.shape[0] != targets.shape[0] or inputs.shape[-1] != targets.shape[-1]:
        raise TransformError(
            f"{who}: inputs {tuple(inputs.shape)} and targets {tuple(targets.shape)} must "
            "share B and T (one target trace per window, sample for sample)."
        )
    if not isinstance(generator, torch.Generator):
        raise TransformError(
            f"{who}: expected a torch.Generator, received {type(generator).__name__}. "
            "Pass e.g. torch.Generator().manual_seed(0)."
        )


def _uniform(low: float, high: float, count: int, generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(count, generator=generator, device=generator.device)


def _chosen(p: float, count: int, generator) -> torch.Tensor:
    return torch.rand(count, generator=generator, device=generator.device) < p  # (B,)


def _number(value, who: str, low: float = 0.0, high: float = math.inf) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not low <= value <= high
    ):
        raise TransformError(
            f"{who}: expected a number in [{low:g}, {high:g}], received {value!r}."
        )
    return float(value)


def _column(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B,) draws as (B, 1, 1) on like's device and dtype."""
    return values.to(like.device, like.dtype)[:, None, None]


class RandomCrop:
    """A `size`-sample window at a random start per sample, the same in both tensors.

    (B, 1, T), (B, K, T) -> (B, 1, size), (B, K, size). Draws B starts.
    """

    def __init__(self, size: int):
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise TransformError(f"random_crop size: expected an integer >= 1, received {size!r}.")
        self.size = size

    def __call__(self, inputs, targets, generator):
        check_pair(inputs, targets, generator, "random_crop")
        count, length = inputs.shape[0], inputs.shape[-1]
        if self.size > length:
            raise TransformError(
                f"random_crop: a {self.size}-sample window does not fit in {length}-sample "
                f"windows; use a size of at most {length}."
            )
        starts = torch.randint(
            0, length - self.size + 1, (count,), generator=generator, device=generator.device
        ).to(inputs.device)  # (B,)
        index = starts[:, None] + torch.arange(self.size, device=inputs.device)  # (B, size)
        return tuple(
            batch.gather(-1, index[:, None, :].expand(-1, batch.shape[1], -1))
            for batch in (inputs, targets)
        )

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size})"


class TimeShift:
    """Shift each window by an integer number of samples, uniform in ±max_s seconds,
    both tensors alike. Samples shifted in repeat the edge value (inputs) or are zero
    (targets: no beat is invented there). Draws B shifts."""

    def __init__(self, max_s: float = 0.2, fs: float = FS):
        self.max_s = _number(max_s, "time_shift max_s")
        self.fs = _number(fs, "time_shift fs", 1.0)

    def __call__(self, inputs, targets, generator):
        check_pair(inputs, targets, generator, "time_shift")
        count, length = inputs.shape[0], inputs.shape[-1]
        reach = round(self.max_s * self.fs)
        shift = torch.randint(
            -reach, reach + 1, (count,), generator=generator, device=generator.device
        ).to(inputs.device)  # (B,) samples, positive = later
        source = torch.arange(length, device=inputs.device)[None, :] - shift[:, None]  # (B, T)
        inside = (source >= 0) & (source < length)  # (B, T)
        index = source.clamp(0, length - 1)[:, None, :]  # (B, 1, T)
        shifted_inputs = inputs.gather(-1, index.expand(-1, inputs.shape[1], -1))
        shifted_targets = targets.gather(-1, index.expand(-1, targets.shape[1], -1))
        shifted_targets = shifted_targets * inside[:, None, :].to(targets.dtype)
        return shifted_inputs, shifted_targets

    def __repr__(self) -> str:
        return f"TimeShift(max_s={self.max_s}, fs={self.fs})"


class PolarityFlip:
    """Inputs multiplied by -1 with probability p per sample (a lead placed the other
    way round). Draws B uniforms."""

    def __init__(self, p: float = 0.5):
        self.p = _number(p, "polarity_flip p", 0.0, 1.0)

    def __call__(self, inputs, targets, generator):
        check_pair(inputs, targets, generator, "polarity_flip")
        flip = _chosen(self.p, inputs.shape[0], generator)
        sign = _column(1.0 - 2.0 * flip.float(), inputs)  # (B, 1, 1) of ±1
        return inputs * sign, targets

    def __repr__(self) -> str:
        return f"PolarityFlip(p={self.p})"


class AmplitudeScale:
    """Inputs multiplied by a log-uniform factor in [low, high] per sample. Draws B."""

    def __init__(self, low: float = 0.5, high: float = 2.0):
        self.low = _number(low, "amplitude_scale low", 1e-6)
        self.high = _number(high, "amplitude_scale high", self.low)

    def __call__(self, inputs, targets, generator):
        check_pair(inputs, targets, generator, "amplitude_scale")
        log_gain = _uniform(math.log(self.low), math.log(self.high), inputs.shape[0], generator)
        return inputs * _column(log_gain.exp(), inputs), targets

    def __repr__(self) -> str:
        return f"AmplitudeScale(low={self.low}, high={self.high})"


class Noise:
    """Additive noise on the inputs: white Gaussian of sd up to `white`, plus
    band-limited noise (low_hz-high_hz, e.g. muscle) of sd up to `band`; each sd uniform
    per sample, in input units. Draws B + B sds, then (B, T) white and (B, T) band noise."""

    def __init__(
        self, white: float = 0.05, band: float = 0.1, low_hz: float = 20.0,
        high_hz: float = 100.0, fs: float = FS,
    ):  # fmt: skip
        self.white = _number(white, "noise white")
        self.band = _number(band, "noise band")
        self.fs = _number(fs, "noise fs", 1.0)
        self.low_hz = _number(low_hz, "noise low_hz", 0.0, self.fs / 2)
        self.high_hz = _number(high_hz, "noise high_hz", self.low_hz, self.fs / 2)

    def __call__(self, inputs, targets, generator):
        check_pair(inputs, targets, generator, "noise")
        count, length = inputs.shape[0], inputs.shape[-1]
        white_sd = _uniform(0, self.white, count, generator)  # (B,)
        band_sd = _uniform(0, self.band, count, generator)  # (B,)
        draw = {"generator": generator, "device": generator.device}
        white = torch.randn((count, length), **draw)  # (B, T)
        band = _band_limited(
            torch.randn((count, length), **draw), self.low_hz, self.high_hz, self.fs
        )
        noise = white * white_sd[:, None] + band * band_sd[:, None]  # (B, T)
        return inputs + noise[:, None, :].to(inputs.device, inputs.dtype), targets

    def __repr__(self) -> str:
        return (
            f"Noise(white={self.white}, band={self.band}, low_hz={self.low_hz}, "
            f"high_hz={self.high_hz}, fs={self.fs})"
        )


def _band_limited(noise: torch.Tensor, low_hz: float, high_hz: float, fs: float) -> torch.Tensor:
    """noise (B, T) with its spectrum zeroed outside [low_hz, high_hz], rescaled to sd 1."""
    length = noise.shape[-1]
    spectrum = torch.fft.rfft(noise, dim=-1)  # (B, T // 2 + 1)
    hz = torch.fft.rfftfreq(length, d=1.0 / fs).to(noise.device)
    spectrum = spectrum * ((hz >= low_hz) & (hz <= high_hz)).to(spectrum.dtype)
    band = torch.fft.irfft(spectrum, n=length, dim=-1)  # (B, T)
    return band / band.std(dim=-1, keepdim=True).clamp(min=1e-12)


class BaselineWander:
    """A slow sinusoid added to the inputs: amplitude uniform in [0, amplitude] (input
    units), frequency uniform in [low_hz, high_hz], random phase. Draws B, B, B."""

    def __init__(
        self, amplitude: float = 0.5, low_hz: float = 0.05, high_hz: float = 0.5, fs: float = FS
    ):
        self.amplitude = _number(amplitude, "baseline_wander amplitude")
        self.low_hz = _number(low_hz, "baseline_wander low_hz")
        self.high_hz = _number(high_hz, "baseline_wander high_hz", self.low_hz)
        self.fs = _number(fs, "baseline_wander fs", 1.0)

    def __call__(self, inputs, targets, generator):
        check_pair(inputs, targets, generator, "baseline_wander")
        count, length = inputs.shape[0], inputs.shape[-1]
        amplitude = _uniform(0, self.amplitude, count, generator)  # (B,)
        hz = _uniform(self.low_hz, self.high_hz, count, generator)  # (B,)
        phase = _uniform(0, 2 * math.pi, count, generator)  # (B,)
        t = torch.arange(length, device=generator.device, dtype=torch.float32) / self.fs  # (T,)
        wave = amplitude[:, None] * torch.sin(2 * math.pi * hz[:, None] * t + phase[:, None])
        return inputs + wave[:, None, :].to(inputs.device, inputs.dtype), targets

    def __repr__(self) -> str:
        return (
            f"BaselineWander(amplitude={self.amplitude}, low_hz={self.low_hz}, "
            f"high_hz={self.high_hz}, fs={self.fs})"
        )


class MotionBurst:
    """An electrode-motion burst added to the inputs, with probability p per sample: noise
    band-limited to low_hz-high_hz (1-10 Hz, slower than a QRS), under a Hann envelope
    `duration_s` long (uniform in the range) at a uniform start, of sd uniform in `sd`
    times the window's R amplitude (its 99th percentile of |x - median|). The kind of burst
    `dlcc.ecg.synth` puts in 0-3 stretches of a record (there a Butterworth band-pass, here
    a band cut in the spectrum, as `noise` does), in every window it is drawn for.
    Draws B uniforms, B sds, B durations, B starts, then (B, T) noise.
    """

    def __init__(
        self, p: float = 0.3, sd: Sequence = (0.2, 0.8), duration_s: Sequence = (0.5, 3.0),
        low_hz: float = 1.0, high_hz: float = 10.0, fs: float = FS,
    ):  # fmt: skip
        self.p = _number(p, "motion_burst p", 0.0, 1.0)
        self.sd = _pair(sd, "motion_burst sd")
        self.duration_s = _pair(duration_s, "motion_burst duration_s")
        self.fs = _number(fs, "motion_burst fs", 1.0)
        self.low_hz = _number(low_hz, "motion_burst low_hz", 0.0, self.fs / 2)
        self.high_hz = _number(high_hz, "motion_burst high_hz", self.low_hz, self.fs / 2)

    def __call__(self, inputs, targets, generator):
        check_pair(inputs, targets, generator, "motion_burst")
        count, length = inputs.shape[0], inputs.shape[-1]
        chosen = _chosen(self.p, count, generator)  # (B,)
        sd = _uniform(*self.sd, count, generator)  # (B,) in R amplitudes
        span = (_uniform(*self.duration_s, count, generator) * self.fs).round().clamp(2, length)
        start = (_uniform(0.0, 1.0, count, generator) * (length - span + 1)).floor()  # (B,)
        draw = {"generator": generator, "device": generator.device}
        band = _band_limited(torch.randn((count, length), **draw), self.low_hz, self.high_hz,
                             self.fs)  # fmt: skip
        position = torch.arange(length, device=generator.device, dtype=torch.float32)  # (T,)
        phase = (position[None, :] - start[:, None]) / (span[:, None] - 1)  # (B, T), 0-1 inside
        envelope = torch.where(
            (phase >= 0) & (phase <= 1), 0.5 - 0.5 * torch.cos(2 * math.pi * phase), 0.0
        )  # (B, T) Hann window over the burst
        signal = inputs[:, 0].detach().to(torch.float32).cpu()  # (B, T)
        centred = (signal - signal.median(dim=-1, keepdim=True).values).abs()
        r_amplitude = torch.quantile(centred, 0.99, dim=-1).to(generator.device)  # (B,)
        scale = sd * r_amplitude * chosen.to(sd.dtype)  # (B,), 0 where not drawn
        burst = band * envelope * scale[:, None]  # (B, T)
        return inputs + burst[:, None, :].to(inputs.device, inputs.dtype), targets

    def __repr__(self) -> str:
        return (
            f"MotionBurst(p={self.p}, sd={self.sd}, duration_s={self.duration_s}, "
            f"low_hz={self.low_hz}, high_hz={self.high_hz}, fs={self.fs})"
        )


def _pair(value, who: str) -> tuple[float, float]:
    """A (low, high) range of non-negative numbers, low <= high."""
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise TransformError(f"{who}: expected a range [low, high], received {value!r}.")
    low = _number(value[0], f"{who} low")
    return low, _number(value[1], f"{who} high", low)


class EcgCompose(PairedCompose):
    """Apply transforms in order, each with the same generator; none: copies. The pair is
    checked as ECG windows, (B, 1, T) and (B, K, T), before the first transform."""

    def __call__(self, inputs, targets, generator):
        check_pair(inputs, targets, generator, "augment")
        if not self.transforms:
            return inputs.clone(), targets.clone()
        return super().__call__(inputs, targets, generator)


ECG_TRANSFORMS: dict[str, type] = {
    "random_crop": RandomCrop,
    "time_shift": TimeShift,
    "polarity_flip": PolarityFlip,
    "amplitude_scale": AmplitudeScale,
    "noise": Noise,
    "baseline_wander": BaselineWander,
    "motion_burst": MotionBurst,
}

# What `augment` applies: every transform but the crop, with its defaults.
DEFAULT_SPEC: tuple = ("time_shift", "polarity_flip", "amplitude_scale", "noise", "baseline_wander")


def build_ecg_augmentation(spec: Sequence | None) -> EcgCompose | None:
    """The recipe's ``augment`` list as ECG transforms, or None when it lists none.

    Entries are names (``"polarity_flip"``) or one-key mappings to options
    (``{"random_crop": {"size": 1800}}``), names from ECG_TRANSFORMS. random_crop, when
    listed, must come first. Raises TransformError naming the entry and the choices.
    """
    example = "[{random_crop: {size: 1800}}, polarity_flip, noise]"
    transforms = build_entries(spec, ECG_TRANSFORMS, example)
    if not transforms:
        return None
    for index, transform in enumerate(transforms[1:], start=1):
        if isinstance(transform, RandomCrop):
            raise TransformError(
                f"augment[{index}]: random_crop must come first, so that the transforms "
                "after it work on the cropped windows; move it to the start of the list."
            )
    return EcgCompose(transforms)


_DEFAULT: EcgCompose | None = None


def augment(inputs: torch.Tensor, targets: torch.Tensor, generator: torch.Generator):
    """The default ECG augmentation (DEFAULT_SPEC) in the loop's calling convention:
    (B, 1, T), (B, K, T), generator -> (B, 1, T), (B, K, T)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = build_ecg_augmentation(list(DEFAULT_SPEC))
    return _DEFAULT(inputs, targets, generator)


__all__ = [
    "DEFAULT_SPEC",
    "ECG_TRANSFORMS",
    "AmplitudeScale",
    "BaselineWander",
    "EcgCompose",
    "MotionBurst",
    "Noise",
    "PolarityFlip",
    "RandomCrop",
    "TimeShift",
    "augment",
    "build_ecg_augmentation",
    "check_pair",
]
