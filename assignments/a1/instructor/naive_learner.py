"""Instructors only (not part of a release): a stand-in learner for Assignment 1.

Conv2d and MaxPool2d written the plain way. The reference Conv2d is channels-last im2col;
a learner writes Python loops over the kernel offsets with NumPy doing the batch and
channel sums, and returns plain C-contiguous NCHW arrays. The method bodies below are that
learner's answers, written against the names the regions see (``self.input``,
``self.params``, ...). They are a solution, which is why they live here and not in
tests/course/a1 (a release copies that folder to learners).

`build_submission(dest)` copies the package to ``dest/src/dlcc`` with the Conv2d and
MaxPool2d regions replaced by these bodies, every other region keeping the reference.
Grade it, or run the tests against it::

    .venv/bin/python assignments/a1/instructor/naive_learner.py /tmp/naive-a1
    .venv/bin/dlcc course grade a1 --hidden --submission /tmp/naive-a1
    PYTHONPATH=/tmp/naive-a1/src .venv/bin/python -m pytest tests/course/a1 -p no:cacheprovider

Every test must pass: this checks that the rest of the pipeline (ReLU, Flatten, the models,
the reference MaxPool2d) takes NCHW arrays, and times a loop-based learner on the CNN
convergence test.
"""

from __future__ import annotations

import ast
import inspect
import shutil
import sys
import textwrap
from pathlib import Path

import numpy as np

from dlcc.numpy_nn.conv import Conv2d
from dlcc.numpy_nn.pooling import MaxPool2d

REPO = Path(__file__).resolve().parents[3]


class NaiveConv2d(Conv2d):
    def forward(self, x):
        self.input = x
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        weight = self.params["weight"]  # (C_out, C_in, kh, kw)
        n, _, height, width = x.shape
        out_h = (height + 2 * ph - kh) // sh + 1
        out_w = (width + 2 * pw - kw) // sw + 1
        x_padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        out = np.zeros((n, weight.shape[0], out_h, out_w), dtype=x.dtype)
        for a in range(kh):
            for b in range(kw):
                patch = x_padded[:, :, a : a + sh * out_h : sh, b : b + sw * out_w : sw]
                out += np.einsum("nchw,oc->nohw", patch, weight[:, :, a, b])
        if "bias" in self.params:
            out += self.params["bias"].reshape(1, -1, 1, 1)
        return out

    def backward(self, grad_out):
        x = self.input
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        weight = self.params["weight"]
        _, _, height, width = x.shape
        _, _, out_h, out_w = grad_out.shape
        x_padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        grad_padded = np.zeros_like(x_padded)
        for a in range(kh):
            for b in range(kw):
                rows = slice(a, a + sh * out_h, sh)
                cols = slice(b, b + sw * out_w, sw)
                patch = x_padded[:, :, rows, cols]
                self.grads["weight"][:, :, a, b] += np.einsum("nohw,nchw->oc", grad_out, patch)
                grad_padded[:, :, rows, cols] += np.einsum(
                    "nohw,oc->nchw", grad_out, weight[:, :, a, b]
                )
        if "bias" in self.params:
            self.grads["bias"] += grad_out.sum(axis=(0, 2, 3))
        return grad_padded[:, :, ph : ph + height, pw : pw + width]


class NaiveMaxPool2d(MaxPool2d):
    def forward(self, x):
        self.input = x
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        n, c, height, width = x.shape
        out_h = (height + 2 * ph - kh) // sh + 1
        out_w = (width + 2 * pw - kw) // sw + 1
        x_padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
        out = np.full((n, c, out_h, out_w), -np.inf, dtype=x.dtype)
        for a in range(kh):
            for b in range(kw):
                window = x_padded[:, :, a : a + sh * out_h : sh, b : b + sw * out_w : sw]
                np.maximum(out, window, out=out)
        return out

    def backward(self, grad_out):
        x = self.input
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        n, c, height, width = x.shape
        _, _, out_h, out_w = grad_out.shape
        x_padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
        maxima = np.full((n, c, out_h, out_w), -np.inf, dtype=x.dtype)
        for a in range(kh):
            for b in range(kw):
                window = x_padded[:, :, a : a + sh * out_h : sh, b : b + sw * out_w : sw]
                np.maximum(maxima, window, out=maxima)
        grad_padded = np.zeros(x_padded.shape, dtype=grad_out.dtype)
        unclaimed = np.ones(maxima.shape, dtype=bool)  # windows whose maximum is not found yet
        for a in range(kh):
            for b in range(kw):
                rows = slice(a, a + sh * out_h, sh)
                cols = slice(b, b + sw * out_w, sw)
                first_max = (x_padded[:, :, rows, cols] == maxima) & unclaimed
                unclaimed &= ~first_max
                grad_padded[:, :, rows, cols] += grad_out * first_max
        return grad_padded[:, :, ph : ph + height, pw : pw + width]


# The regions these methods answer: (file, region function) -> method.
ANSWERS = {
    ("src/dlcc/numpy_nn/conv.py", "Conv2d.forward"): NaiveConv2d.forward,
    ("src/dlcc/numpy_nn/conv.py", "Conv2d.backward"): NaiveConv2d.backward,
    ("src/dlcc/numpy_nn/pooling.py", "MaxPool2d.forward"): NaiveMaxPool2d.forward,
    ("src/dlcc/numpy_nn/pooling.py", "MaxPool2d.backward"): NaiveMaxPool2d.backward,
}


def method_body(method) -> list[str]:
    """The source lines of a method's body, dedented to no indentation."""
    source = textwrap.dedent(inspect.getsource(method))
    function = ast.parse(source).body[0]
    lines = source.splitlines(keepends=True)
    return textwrap.dedent("".join(lines[function.body[0].lineno - 1 :])).splitlines(True)


def splice(text: str, filename: str, answers: dict) -> str:
    """``text`` with each region named in ``answers`` replaced by that method's body."""
    from dlcc.course.fences import parse_regions

    lines = text.splitlines(keepends=True)
    for region in reversed(parse_regions(text, filename)):
        method = answers.get(region.function)
        if method is None:
            continue
        body = [region.indent + line if line.strip() else line for line in method_body(method)]
        lines[region.begin_line - 1 : region.last_line] = body
    return "".join(lines)


def build_submission(dest: str | Path) -> Path:
    """Copy ``src/dlcc`` to ``dest/src/dlcc`` with this learner's Conv2d and MaxPool2d."""
    dest = Path(dest)
    package = dest / "src" / "dlcc"
    if package.exists():
        shutil.rmtree(package)
    shutil.copytree(REPO / "src" / "dlcc", package, ignore=shutil.ignore_patterns("__pycache__"))
    by_file: dict[str, dict] = {}
    for (filename, function), method in ANSWERS.items():
        by_file.setdefault(filename, {})[function] = method
    for filename, answers in by_file.items():
        text = (REPO / filename).read_text()
        (dest / filename).write_text(splice(text, filename, answers))
    return dest


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python assignments/a1/instructor/naive_learner.py DEST")
    print(build_submission(sys.argv[1]))
