"""Examples made here, not shipped data: an ECG record and ten drawn digits.

The ECG (the page's and the Streamlit app's example): 12 s at 250 Hz, 72 bpm, a few
premature ventricular beats and mild noise, by the project's synthetic generator from a
fixed seed, as CSV (``time_s,ecg_mv``).

The digits (the Streamlit app's examples, in place of the page's drawing canvas): each
digit 0-9 drawn as pen strokes with PIL on a 280x280 black canvas, white, 20 px wide (what
the page's canvas makes), as PNG. No recorded data is shipped.
"""

from __future__ import annotations

import functools
import io
import math

import numpy as np

EXAMPLE_FS = 250.0
EXAMPLE_SECONDS = 12.0
EXAMPLE_SEED = 100


@functools.lru_cache(maxsize=1)
def ecg_example_csv() -> bytes:
    from dlcc.ecg.synth import synthesize

    record = synthesize(
        EXAMPLE_SECONDS, EXAMPLE_FS, np.random.default_rng(EXAMPLE_SEED), heart_rate=72.0,
        ectopic_fraction=0.1, min_pvcs=1, baseline_wander=0.1, emg_noise=0.02,
    )  # fmt: skip
    lines = ["time_s,ecg_mv"]
    lines += [f"{i / EXAMPLE_FS:.4f},{v:.4f}" for i, v in enumerate(record.signal)]
    return ("\n".join(lines) + "\n").encode("ascii")


def _arc(cx: float, cy: float, rx: float, ry: float, start: float, stop: float, n: int = 32):
    angles = np.radians(np.linspace(start, stop, n))
    return [(cx + rx * math.cos(a), cy + ry * math.sin(a)) for a in angles]


# Each digit: pen strokes, points in a unit square (x right, y down).
DIGIT_STROKES = {
    0: [_arc(0.5, 0.5, 0.28, 0.4, 0, 360, 40)],
    1: [[(0.38, 0.25), (0.55, 0.1), (0.55, 0.9)]],
    2: [[*_arc(0.5, 0.32, 0.25, 0.22, 200, 380), (0.25, 0.9), (0.78, 0.9)]],
    3: [_arc(0.48, 0.3, 0.24, 0.2, 210, 450) + _arc(0.48, 0.7, 0.27, 0.2, 270, 510)],
    4: [[(0.6, 0.1), (0.22, 0.62), (0.8, 0.62)], [(0.62, 0.35), (0.62, 0.92)]],
    5: [[(0.75, 0.1), (0.32, 0.1), (0.28, 0.45), *_arc(0.5, 0.66, 0.27, 0.25, 230, 490)]],
    6: [[(0.68, 0.1), (0.4, 0.4), *_arc(0.5, 0.68, 0.24, 0.23, 200, 560)]],
    7: [[(0.22, 0.12), (0.78, 0.12), (0.42, 0.9)]],
    8: [_arc(0.5, 0.3, 0.2, 0.19, 90, 450) + _arc(0.5, 0.7, 0.25, 0.21, -90, 270)],
    9: [[*_arc(0.5, 0.32, 0.23, 0.21, 0, 360), (0.73, 0.32), (0.68, 0.9)]],
}
CANVAS = 280  # pixels, as the page's canvas
PEN = 20  # pixels, as the page's pen


@functools.lru_cache(maxsize=10)
def digit_example_png(digit: int) -> bytes:
    """A PNG of `digit` (0-9) drawn in pen strokes, light on dark, 280x280."""
    from PIL import Image, ImageDraw

    if digit not in DIGIT_STROKES:
        raise ValueError(f"digit must be one of 0..9; received {digit!r}")
    image = Image.new("L", (CANVAS, CANVAS), 0)
    pen = ImageDraw.Draw(image)
    margin, span = 0.1 * CANVAS, 0.8 * CANVAS
    for stroke in DIGIT_STROKES[digit]:
        points = [(margin + x * span, margin + y * span) for x, y in stroke]
        pen.line(points, fill=255, width=PEN, joint="curve")
        for x, y in (points[0], points[-1]):  # round pen ends
            pen.ellipse([x - PEN / 2, y - PEN / 2, x + PEN / 2, y + PEN / 2], fill=255)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
