"""The source check (`dlcc.course.source_check`): what an assignment bans, found statically.

- the checkers on small texts: each import form and literal evasion it catches, what it
  must not flag;
- the catalogue's ``[aN.banned_imports]`` and ``[aN.no_autograd]``: validation, rendering;
- what a violation costs (the tests needing the region, or every region of the file);
- the real course: the reference passes its own rules; a1 graded with ``import torch``
  added to layers.py scores 0 exactly on the tests of layers.py's regions.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
from course_fake_root import make_fake_root

import dlcc
from dlcc.course.catalogue import (
    Assignment,
    BannedImports,
    GradedTest,
    NoAutograd,
    load_catalogue,
    render_catalogue,
)
from dlcc.course.errors import CourseError
from dlcc.course.fences import parse_regions
from dlcc.course.outcome import Status, TestOutcome
from dlcc.course.release import check_regions
from dlcc.course.source_check import (
    SourceCheck,
    Violation,
    autograd_uses,
    banned_imports,
    check_sources,
)

REPO = Path(dlcc.__file__).resolve().parents[2]
TORCH = ("torch", "jax")


def whats(findings) -> list[tuple[int, str]]:
    return [(finding.line, finding.what) for finding in findings]


# ---- banned imports on small texts --------------------------------------------------------

CAUGHT = [
    ("import torch", "imports torch"),
    ("import numpy as np, torch.nn as x", "imports torch"),
    ("from torch import nn", "imports torch"),
    ("from torch.nn.functional import relu as r", "imports torch"),
    ("from jax import numpy as jnp", "imports jax"),
    ("def f():\n    import torch", "imports torch"),
    ("class C:\n    def f(self):\n        from torch import nn", "imports torch"),
    ("try:\n    import torch\nexcept ImportError:\n    pass", "imports torch"),
    ('__import__("torch")', "imports torch (through __import__)"),
    ('__import__(name="torch.nn")', "imports torch (through __import__)"),
    ('import builtins\nbuiltins.__import__("torch")', "imports torch (through __import__)"),
    ('getattr(__builtins__, "__import__")("torch")', "imports torch (through __import__)"),
    ('import importlib\nimportlib.import_module("torch")', "imports torch (through import_module)"),
    (
        'from importlib import import_module as load\nload("torch.nn")',
        "imports torch (through import_module)",
    ),
    (
        'import importlib\nimportlib.import_module("to" + "rch")',
        "imports torch (through import_module)",
    ),
    ('__import__(f"torch")', "imports torch (through __import__)"),
    ('__import__("".join(["to", "rch"]))', "imports torch (through __import__)"),
    (
        'import importlib.util\nimportlib.util.find_spec("torch")',
        "imports torch (through find_spec)",
    ),
    ('import sys\nsys.modules["torch"]', "imports torch (through sys.modules)"),
    ('import sys\nsys.modules.get("jax")', "imports jax (through sys.modules)"),
    ('exec("import torch")', "imports torch (in code given to exec)"),
    ('eval(compile("import torch", "x", "exec"))', "imports torch (in code given to compile)"),
]


@pytest.mark.parametrize(("code", "what"), CAUGHT, ids=[c for c, _ in CAUGHT])
def test_each_form_of_a_banned_import_is_found(code, what):
    text = "import numpy as np\n\n" + code + "\n"
    findings = banned_imports(text, TORCH)
    assert findings, code
    assert findings[0].what == what
    banned_line = next(
        i for i, line in enumerate(code.splitlines()) if "rch" in line or "jax" in line
    )
    assert findings[0].line == 3 + banned_line


ALLOWED = [
    "import numpy as np",
    "import torchmetrics",  # a prefix of the name is not the module
    "from dlcc.numpy_nn.module import Module",
    "from . import torch",  # relative: a module of the package itself
    '"""Shapes follow torch.nn."""',
    "# import torch",
    'message = "import torch"',
    'print("torch")',
    '__import__("numpy")',
    "import importlib\nname = 'to' + 'rch'\nimportlib.import_module(name)",  # not a literal
]


@pytest.mark.parametrize("code", ALLOWED)
def test_what_is_not_a_banned_import(code):
    assert banned_imports(code + "\n", TORCH) == []


def test_a_dotted_ban_covers_that_module_and_below_only():
    text = "import torch\nfrom torch import autograd\nimport torch.autograd.functional\n"
    assert whats(banned_imports(text, ("torch.autograd",))) == [
        (2, "imports torch.autograd"),
        (3, "imports torch.autograd"),
    ]


# ---- autograd in a region on small texts --------------------------------------------------

AUTOGRAD_FILE = '''\
import torch
import torch.nn.functional as F
from torch.autograd import grad as g
from torch import func

ag = torch.autograd


def helper(loss):
    loss.backward()


def harmless(x):
    return x * 2


def gradient(f, x):
    return torch.autograd.grad(f(x), x)[0]


def region(cache):
    """By hand (no autograd, no .backward())."""
    x = cache["x"].clone()
    grad_w = x.T @ x  # a variable named grad_... is fine
    BODY
    return harmless(grad_w)
'''

AUTOGRAD_CAUGHT = [
    ("cache['loss'].backward()", "uses .backward() (autograd)"),
    ("torch.Tensor.backward(cache['loss'])", "uses .backward() (autograd)"),
    ("cache['loss'].sum().backward()", "uses .backward() (autograd)"),
    ("getattr(cache['loss'], 'backward')()", "uses .backward() (autograd)"),
    ("w = cache['w'].grad", "uses .grad (autograd)"),
    ("torch.autograd.grad(cache['loss'], x)", "uses torch.autograd.grad"),
    ("getattr(torch, 'autograd').grad(1, x)", "uses torch.autograd.grad"),
    ("g(cache['loss'], x)", "uses torch.autograd.grad"),
    ("ag.grad(cache['loss'], x)", "uses torch.autograd.grad"),
    ("func.grad(F.cross_entropy)(x)", "uses torch.func.grad"),
    ("torch.func.jacrev(F.softmax)(x)", "uses torch.func.jacrev"),
    ("import functorch", "imports functorch"),
    ("from torch.autograd.functional import jacobian", "imports torch.autograd"),
    ("__import__('torch.autograd')", "imports torch.autograd (through __import__)"),
    ("helper(cache['loss'])", "(through helper) uses .backward() (autograd)"),
    ("gradient(F.softmax, x)", "(through gradient) uses torch.autograd.grad"),
    ("f = lambda t: t.backward()", "uses .backward() (autograd)"),
]


@pytest.mark.parametrize(("body", "what"), AUTOGRAD_CAUGHT, ids=[b for b, _ in AUTOGRAD_CAUGHT])
def test_each_use_of_autograd_in_a_region_is_found(body, what):
    findings = autograd_uses(AUTOGRAD_FILE.replace("BODY", body), "region")
    assert [finding.what for finding in findings] == [what]


def test_a_region_without_autograd_passes_and_outside_code_does_not_count():
    text = AUTOGRAD_FILE.replace("BODY", "grad_b = grad_w.sum(dim=0)")
    assert autograd_uses(text, "region") == []
    assert whats(autograd_uses(text, "gradient")) == [(18, "uses torch.autograd.grad")]
    assert autograd_uses(text, "no_such_function") == []


def test_a_method_region_is_found_by_its_qualified_name():
    text = textwrap.dedent(
        """
        class LogSumExp:
            @staticmethod
            def backward(ctx, grad_output):
                x, = ctx.saved_tensors
                return grad_output.backward()
        """
    )
    assert whats(autograd_uses(text, "LogSumExp.backward")) == [(6, "uses .backward() (autograd)")]


def test_the_reference_two_layer_backward_uses_no_autograd():
    text = (REPO / "src/dlcc/training/autograd_basics.py").read_text()
    assert autograd_uses(text, "two_layer_net_backward") == []
    assert autograd_uses(text, "gradient")  # and the check does see autograd in this file


# ---- the catalogue ------------------------------------------------------------------------

RULES = """
[a1.banned_imports]
modules = ["torch", "jax"]
sources = ["src/dlcc/toy/ops.py"]
where = "in its toy files"
hint = "write it in plain Python"

[a1.no_autograd]
regions = ["add"]
hint = "by hand"
"""


@pytest.fixture
def root(tmp_path):
    return make_fake_root(tmp_path / "root")


def add_rules(root: Path, rules: str = RULES) -> None:
    path = root / "assignments" / "catalogue.toml"
    text = path.read_text()
    first_test = text.index("[[a1.tests]]")
    path.write_text(text[:first_test] + rules.lstrip() + "\n" + text[first_test:])


def test_rules_load_and_render_round_trips(root):
    add_rules(root)
    a1 = load_catalogue(root).get("a1")
    assert a1.banned_imports == BannedImports(
        ("torch", "jax"), ("src/dlcc/toy/ops.py",), "in its toy files", "write it in plain Python"
    )
    assert a1.no_autograd == NoAutograd(("add",), "by hand")
    assert a1.banned_imports.covers("src/dlcc/toy/ops.py")
    assert not a1.banned_imports.covers("src/dlcc/toy/shapes.py")
    assignments = list(load_catalogue(root).assignments.values())
    (root / "assignments" / "catalogue.toml").write_text(render_catalogue(assignments))
    assert list(load_catalogue(root).assignments.values()) == assignments
    check_regions(root, a1)


def test_a_glob_does_not_cross_folders_and_defaults_cover_every_source(root):
    add_rules(root, '[a1.banned_imports]\nmodules = ["torch"]\n')
    banned = load_catalogue(root).get("a1").banned_imports
    assert banned.where == "in this file" and banned.hint == "" and banned.sources == ()
    assert banned.covers("src/dlcc/toy/shapes.py")
    assert BannedImports(("torch",), ("src/dlcc/*.py",)).covers("src/dlcc/x.py")
    assert not BannedImports(("torch",), ("src/dlcc/*.py",)).covers("src/dlcc/toy/ops.py")


BAD_RULES = [
    ("a1.banned_imports = 3", "[a1] banned_imports: expected a table"),
    ("[a1.banned_imports]\nsources = []", "banned_imports: missing 'modules'"),
    ("[a1.banned_imports]\nmodules = []", "banned_imports: modules is empty"),
    ("[a1.banned_imports]\nmodules = ['torch nn']", "'torch nn' is not a module name"),
    ("[a1.banned_imports]\nmodules = ['torch', 'torch']", "modules lists 'torch' twice"),
    ("[a1.banned_imports]\nmodules = 'torch'", "modules must be a list of module names"),
    ("[a1.banned_imports]\nmodule = ['torch']", "unknown key 'module' (did you mean 'modules'?)"),
    (
        "[a1.banned_imports]\nmodules = ['torch']\nsources = ['src/dlcc/other/*.py']",
        "sources pattern 'src/dlcc/other/*.py' matches none of a1's sources",
    ),
    ("[a1.banned_imports]\nmodules = ['torch']\nwhere = ''", "where must be a non-empty string"),
    ("[a1.banned_imports]\nmodules = ['torch']\nhint = 1", "hint must be a string"),
    ("[a1.no_autograd]\nhint = 'x'", "no_autograd: missing 'regions'"),
    ("[a1.no_autograd]\nregions = [1]", "regions must be a list of function names"),
    ("[a1.no_autograd]\nregion = ['add']", "unknown key 'region' (did you mean 'regions'?)"),
]


@pytest.mark.parametrize(("rules", "message"), BAD_RULES, ids=[m for _, m in BAD_RULES])
def test_bad_rules_say_what_is_wrong(root, rules, message):
    if rules.startswith("a1."):  # a dotted key, not a table: put it among a1's keys
        path = root / "assignments" / "catalogue.toml"
        path.write_text(path.read_text().replace("[a1]\n", f"[a1]\n{rules[3:]}\n", 1))
    else:
        add_rules(root, rules)
    with pytest.raises(CourseError) as error:
        load_catalogue(root)
    assert message in str(error.value)
    assert "assignments/catalogue.toml: [a1]" in str(error.value)


def test_a_no_autograd_region_must_be_a_solution_region(root):
    add_rules(root, "[a1.no_autograd]\nregions = ['ad']\n")
    with pytest.raises(CourseError, match=r"\[a1.no_autograd\] regions names 'ad', which holds"):
        check_regions(root, load_catalogue(root).get("a1"))


# ---- what a violation costs ---------------------------------------------------------------


def test_a_violation_costs_the_tests_needing_its_regions_and_those_listing_none():
    layer = GradedTest("t.py::test_layer", 1, "public", "P", regions=("Linear.forward",))
    both = GradedTest("t.py::test_both", 1, "public", "P", regions=("fit", "Linear.backward"))
    other = GradedTest("t.py::test_other", 1, "public", "P", regions=("fit",))
    unlisted = GradedTest("t.py::test_unlisted", 1, "public", "P")
    first = Violation("src/dlcc/x.py", 3, "x.py:3: imports torch", frozenset({"Linear.forward"}))
    second = Violation("src/dlcc/x.py", 9, "x.py:9: imports jax", frozenset({"Linear.backward"}))
    checked = SourceCheck((first, second))
    passed = TestOutcome(Status.PASSED, "passed", 0.5)
    assert checked.outcome(layer, passed) == TestOutcome(
        Status.FAILED, "x.py:3: imports torch", 0.5
    )
    assert checked.outcome(both, passed).feedback == "x.py:9: imports jax"
    assert checked.outcome(other, passed) is passed
    assert checked.outcome(unlisted, passed).feedback == (
        "x.py:3: imports torch (and 1 more: see the notes)"
    )
    assert checked.notes == [
        "source check: x.py:3: imports torch",
        "source check: x.py:9: imports jax",
    ]
    assert SourceCheck().outcome(layer, passed) is passed


def test_the_references_pass_their_own_rules():
    catalogue = load_catalogue(REPO)
    a1, a2 = catalogue.get("a1"), catalogue.get("a2")
    assert a1.banned_imports is not None and "torch" in a1.banned_imports.modules
    assert not a1.banned_imports.covers("src/dlcc/environment.py")  # it reports torch's version
    assert a2.no_autograd is not None and "two_layer_net_backward" in a2.no_autograd.regions
    for assignment in (a1, a2):
        assert check_sources(REPO, assignment, REPO).violations == ()


def copy_sources(assignment: Assignment, folder: Path) -> None:
    for source in assignment.sources:
        (folder / source).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / source, folder / source)


def test_autograd_in_a2s_hand_written_backward_costs_only_its_tests(tmp_path):
    a2 = load_catalogue(REPO).get("a2")
    copy_sources(a2, tmp_path)
    path = tmp_path / "src/dlcc/training/autograd_basics.py"
    text = path.read_text()
    (region,) = [r for r in parse_regions(text) if r.function == "two_layer_net_backward"]
    lines = text.splitlines(keepends=True)
    body = (
        '    w = {k: cache[k].detach().requires_grad_() for k in ("w1", "w2")}\n'
        "    loss = (cache['x'] @ w['w1'].T).sum()\n"
        "    loss.backward()\n"
        "    return {k: v.grad for k, v in w.items()}\n"
    )
    lines[region.begin_line : region.end_line - 1] = [body]
    path.write_text("".join(lines))
    checked = check_sources(REPO, a2, tmp_path)
    line = region.begin_line + 3
    assert [v.message for v in checked.violations] == [
        f"autograd_basics.py:{line}: two_layer_net_backward uses .backward() (autograd), "
        "which a2 does not allow there (compute the gradients by hand, with the chain rule)",
        f"autograd_basics.py:{line + 1}: two_layer_net_backward uses .grad (autograd), "
        "which a2 does not allow there (compute the gradients by hand, with the chain rule)",
    ]
    costed = {test.function for test in a2.tests if checked.costs(test)}
    assert costed == {
        "test_two_layer_backward_matches_autograd",
        "test_two_layer_backward_random_shapes",
    }


@pytest.mark.slow
@pytest.mark.course_integration
def test_a1_with_torch_imported_in_layers_scores_0_on_layers_tests_only(tmp_path):
    from dlcc.course.grade import grade

    a1 = load_catalogue(REPO).get("a1")
    submission = tmp_path / "submission"
    copy_sources(a1, submission)
    layers = submission / "src/dlcc/numpy_nn/layers.py"
    text = layers.read_text()
    future = "from __future__ import annotations\n"
    layers.write_text(text.replace(future, future + "import torch\n", 1))
    line = text[: text.index(future)].count("\n") + 2
    report = grade(REPO, "a1", submission=submission)
    message = (
        f"layers.py:{line}: imports torch, which a1 does not allow in its NumPy files "
        "(write it with NumPy)"
    )
    in_layers = {r.function for r in parse_regions((REPO / a1.sources[0]).read_text())}
    assert in_layers >= {"Linear.forward", "ReLU.backward"}
    costed = [r for r in report.results if set(r.test.regions) & in_layers]
    kept = [r for r in report.results if not set(r.test.regions) & in_layers]
    assert costed and kept
    assert {(r.score, r.outcome.status, r.outcome.feedback) for r in costed} == {
        (0.0, Status.FAILED, message)
    }
    assert [r.test.test for r in kept if not r.outcome.passed] == []
    assert report.score == sum(r.test.points for r in kept)
    assert f"note: source check: {message}" in report.table()
    assert "test_a1_conv.py::test_conv_forward_matches_torch" in {r.test.test for r in kept}
