"""The course mechanism on the real assignments (a1 to a7): a handful of grader runs each.

For every ready assignment:
1. the reference scores 100% (hidden tests included) and its results.json validates;
2. a fresh release has no hidden tests; graded as a submission it scores 0 (every test
   needs a region the learner writes), exits 0 and lists every public test;
3. the release with one solution region pasted back scores exactly the tests whose
   ``regions`` it covers (partial credit).

Slow (the references train small networks): select with ``-m course_integration``, or leave
out with ``-m "not course_integration"``.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

import dlcc
from dlcc.cli import main
from dlcc.course.catalogue import CATALOGUE_PATH, load_catalogue
from dlcc.course.fences import parse_regions, strip_solutions
from dlcc.course.grade import grade
from dlcc.course.report import validate_results

pytestmark = pytest.mark.course_integration

REPO = Path(dlcc.__file__).resolve().parents[2]
# The regions pasted back into a release, per assignment: a layer's and the set-up's for
# a1; for a2 `evaluate` (two regions in one function); for a3 `UNet.forward` (graded with
# stand-in blocks, so it earns its one public test while ConvBlock and Up are still stubs);
# for a4 `LSTM._backprop_layer` (graded on a cache the test makes, without the forward);
# for a5 `gradient_penalty` (graded on critics the tests build, without the losses around it);
# for a6 `ranked_trials` (graded on sweep.json documents the tests write); for a7
# `group_by_shape` (graded on its own, on pairs the test makes, without the batcher).
PASTED = [
    ("a1", "ReLU.forward"),
    ("a1", "describe_environment"),
    ("a2", "evaluate"),
    ("a3", "UNet.forward"),
    ("a4", "LSTM._backprop_layer"),
    ("a5", "gradient_penalty"),
    ("a6", "ranked_trials"),
    ("a7", "group_by_shape"),
]
ASSIGNMENTS = sorted({assignment_id for assignment_id, _ in PASTED})


def load(assignment_id: str):
    if not (REPO / CATALOGUE_PATH).is_file():
        pytest.skip("this checkout has no assignments/catalogue.toml")
    return load_catalogue(REPO).ready(assignment_id)


def ids_needing_only(assignment, regions: set[str], visibility: str = "public") -> set[str]:
    """Ids of the tests whose listed regions are all in `regions`."""
    return {
        test.test
        for test in assignment.tests
        if test.visibility == visibility
        and test.regions is not None
        and set(test.regions) <= regions
    }


def points_of(assignment, test_ids: set[str]) -> float:
    return sum(test.points for test in assignment.tests if test.test in test_ids)


@pytest.mark.parametrize("assignment_id", ASSIGNMENTS)
def test_every_graded_test_names_its_regions_and_the_total_is_100(assignment_id):
    assignment = load(assignment_id)
    assert all(test.regions for test in assignment.tests)  # partial credit relies on it
    assert assignment.points("public") + assignment.points("hidden") == 100


@pytest.mark.parametrize("assignment_id", ASSIGNMENTS)
def test_reference_scores_full_marks(assignment_id, tmp_path):
    assignment = load(assignment_id)
    results_path = tmp_path / "results.json"
    report = grade(REPO, assignment_id, hidden=True, json_path=results_path)
    failing = [(r.test.test, r.outcome.feedback) for r in report.results if not r.outcome.passed]
    assert failing == []
    assert report.score == report.max_score == 100
    data = json.loads(results_path.read_text())
    validate_results(data)
    assert data["score"] == data["max_score"] == report.max_score
    assert len(data["tests"]) == len(assignment.tests)
    hidden_names = {t["name"] for t in data["tests"] if t["visibility"] == "after_published"}
    assert len(hidden_names) == sum(t.visibility == "hidden" for t in assignment.tests) > 0


@pytest.mark.parametrize("assignment_id", ASSIGNMENTS)
def test_release_has_no_hidden_tests_and_scores_zero(assignment_id, releases, tmp_path, capsys):
    assignment = load(assignment_id)
    released = releases(assignment_id)
    hidden = [t for t in assignment.tests if t.visibility == "hidden"]
    public = [t for t in assignment.tests if t.visibility == "public"]
    release_catalogue = load_catalogue(released).get(assignment_id)
    assert [t.test for t in release_catalogue.tests] == [t.test for t in public]
    test_code = "\n".join(p.read_text() for p in (released / assignment.tests_dir).rglob("*.py"))
    for test in hidden:
        assert f"def {test.function}(" not in test_code, test.test
    results_path = tmp_path / "results.json"
    argv = ["course", "grade", assignment_id, "--root", str(released), "--submission"]
    assert main([*argv, str(released), "--json", str(results_path)]) == 0
    printed = capsys.readouterr().out
    data = json.loads(results_path.read_text())
    validate_results(data)
    assert len(data["tests"]) == len(public)
    for test in public:
        assert test.test in printed
    assert ids_needing_only(assignment, set()) == set()  # nothing passes without learner code
    assert data["score"] == 0
    assert data["max_score"] == assignment.points("public")
    for entry in data["tests"]:
        # Tests sharing a training run get it from a fixture: the stub surfaces in set-up.
        output = entry["output"].removeprefix("error in test setup: ")
        assert output.startswith(f"not implemented yet: {assignment_id}: "), entry


@pytest.mark.parametrize(("assignment_id", "pasted_region"), PASTED)
def test_one_pasted_region_earns_exactly_its_tests(
    assignment_id, pasted_region, releases, tmp_path
):
    assignment = load(assignment_id)
    released = releases(assignment_id)
    owners = [
        source
        for source in assignment.sources
        if any(r.function == pasted_region for r in parse_regions((REPO / source).read_text()))
    ]
    assert owners, f"no solution region in {pasted_region} any more: pick another"
    submission = tmp_path / "partial"
    for source in assignment.sources:
        target = submission / source
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((released / source).read_bytes())
    owner = owners[0]
    reference = (REPO / owner).read_text()
    (submission / owner).write_text(
        strip_solutions(reference, owner, assignment_id, keep=lambda r: r.function == pasted_region)
    )
    report = grade(REPO, assignment_id, submission=submission)
    needing = ids_needing_only(assignment, {pasted_region})
    assert needing, f"no public test needs only {pasted_region}"
    passed = {r.test.test for r in report.results if r.outcome.passed}
    assert passed == needing
    assert report.score == points_of(assignment, needing)
    assert len(report.results) == len(assignment.selected_tests(hidden=False))


def test_a2_graded_smoke_recipe_is_the_repository_one():
    """a2's convergence test carries its own copy of the digits smoke recipe."""
    assignment = load("a2")
    path = REPO / assignment.tests_dir / "test_a2_digits.py"
    spec = importlib.util.spec_from_file_location("a2_digits_for_check", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    recipe = yaml.safe_load((REPO / "recipes" / "mnist_cnn_smoke.yaml").read_text())
    for section in ("data", "model", "optim", "schedule"):
        assert module.SMOKE_RECIPE[section] == recipe[section], section
    for key, value in recipe["train"].items():
        assert module.SMOKE_RECIPE["train"][key] == value, key


# The attacks, each added to the a1 starter: none of them earns a point.
A1_ATTACKS = """
import gc as _gc
import numpy as _np
import numpy.testing as _testing

# Fooling the oracle: make every array comparison agree.
_np.abs = lambda values, *args, **kwargs: _np.zeros_like(values)
_np.allclose = lambda *args, **kwargs: True
_testing.assert_allclose = lambda *args, **kwargs: None

# Forging the report: rewrite the reporting plugin's results through memory.
class _AlwaysPassed(dict):
    def get(self, key, default=None):
        return ("passed", "passed")

for _hooks in [o for o in _gc.get_objects() if type(o).__name__ == "Hooks"]:
    _finish = _hooks.pytest_runtest_logfinish
    for _name, _cell in zip(_finish.__code__.co_freevars, _finish.__closure__):
        if _name == "results":
            _cell.cell_contents = _AlwaysPassed()

# Reading the reference: find a copy of this file with its solutions, and run it.
def _reference_copy():
    import os, sys
    folders = list(sys.path) + [os.path.join(os.path.expanduser("~"), "dlcc", "src")]
    for folder in folders:
        path = os.path.join(folder, "dlcc", "numpy_nn", "layers.py")
        if os.path.realpath(path) == os.path.realpath(__file__):
            continue
        try:
            text = open(path).read()
        except OSError:
            continue
        if "NotImplementedError" not in text:  # a copy with the answers in it
            return text
    return None

_text = _reference_copy()
if _text is not None:
    exec(compile(_text, "layers.py", "exec"), globals())
"""


@pytest.mark.slow
def test_the_a1_starter_with_the_attacks_added_scores_zero(releases, tmp_path):
    assignment = load("a1")
    released = releases("a1")
    submission = tmp_path / "attacker"
    for source in assignment.sources:
        target = submission / source
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((released / source).read_bytes())
    layers = submission / "src/dlcc/numpy_nn/layers.py"
    layers.write_text(layers.read_text() + A1_ATTACKS)
    report = grade(REPO, "a1", submission=submission, hidden=True)
    passed = [r.test.test for r in report.results if r.outcome.passed]
    assert report.score == 0, passed
