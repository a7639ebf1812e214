"""The course mechanism on the real Assignment 1: four grader runs in all.

1. The reference scores 100% (hidden tests included) and its results.json validates.
2. A fresh release has no hidden tests; graded as a submission it scores 0 (every test, the
   set-up ones included, needs a region the learner writes), exits 0 and lists every public
   test.
3. The release with exactly one solution region pasted back (a layer's, and the set-up's
   `describe_environment`) scores exactly the tests whose ``regions`` it covers.

Slow (the reference trains two small networks): select with ``-m course_integration``, or
leave out with ``-m "not course_integration"``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import dlcc
from dlcc.cli import main
from dlcc.course.catalogue import CATALOGUE_PATH, load_catalogue
from dlcc.course.fences import parse_regions, strip_solutions
from dlcc.course.grade import grade, validate_results
from dlcc.course.release import release

pytestmark = pytest.mark.course_integration

REPO = Path(dlcc.__file__).resolve().parents[2]
PASTED_REGIONS = ["ReLU.forward", "describe_environment"]


@pytest.fixture(scope="module")
def a1():
    if not (REPO / CATALOGUE_PATH).is_file():
        pytest.skip("this checkout has no assignments/catalogue.toml")
    return load_catalogue(REPO).ready("a1")


def points_needing_only(assignment, regions: set[str], visibility: str = "public") -> float:
    """Points of the tests whose listed regions are all in `regions`."""
    return sum(
        test.points
        for test in assignment.tests
        if test.visibility == visibility
        and test.regions is not None
        and set(test.regions) <= regions
    )


def test_every_graded_test_names_its_regions(a1):
    # The partial-credit check below relies on it.
    assert all(test.regions is not None for test in a1.tests)


def test_reference_scores_full_marks(a1, tmp_path):
    results_path = tmp_path / "results.json"
    report = grade(REPO, "a1", hidden=True, json_path=results_path)
    failing = [(r.test.test, r.feedback) for r in report.results if r.outcome != "passed"]
    assert failing == []
    assert report.score == report.max_score == a1.points("public") + a1.points("hidden")
    data = json.loads(results_path.read_text())
    validate_results(data)
    assert data["score"] == data["max_score"] == report.max_score
    assert len(data["tests"]) == len(a1.tests)
    hidden_names = {t["name"] for t in data["tests"] if t["visibility"] == "after_published"}
    assert len(hidden_names) == sum(t.visibility == "hidden" for t in a1.tests) > 0


@pytest.fixture(scope="module")
def released(a1, tmp_path_factory):
    return release(REPO, "a1", tmp_path_factory.mktemp("a1") / "release")


def test_release_has_no_hidden_tests_and_scores_zero(a1, released, tmp_path, capsys):
    hidden = [t for t in a1.tests if t.visibility == "hidden"]
    public = [t for t in a1.tests if t.visibility == "public"]
    release_catalogue = load_catalogue(released).get("a1")
    assert [t.test for t in release_catalogue.tests] == [t.test for t in public]
    test_code = "\n".join(path.read_text() for path in (released / a1.tests_dir).rglob("*.py"))
    for test in hidden:
        assert f"def {test.function}(" not in test_code, test.test
    results_path = tmp_path / "results.json"
    argv = ["course", "grade", "a1", "--root", str(released), "--submission", str(released)]
    assert main([*argv, "--json", str(results_path)]) == 0
    printed = capsys.readouterr().out
    data = json.loads(results_path.read_text())
    validate_results(data)
    assert len(data["tests"]) == len(public)
    for test in public:
        assert test.test in printed
    assert points_needing_only(a1, set()) == 0  # no test passes without learner code
    assert data["score"] == 0
    assert data["max_score"] == a1.points("public")
    for entry in data["tests"]:
        if entry["score"] == 0:
            assert entry["output"].startswith("not implemented yet: a1: "), entry


@pytest.mark.parametrize("pasted_region", PASTED_REGIONS)
def test_one_pasted_region_earns_exactly_its_tests(a1, released, tmp_path, pasted_region):
    owner = None
    for source in a1.sources:
        regions = parse_regions((REPO / source).read_text(), source)
        if any(region.function == pasted_region for region in regions):
            owner = source
    assert owner is not None, f"no solution region in {pasted_region} any more: pick another"
    submission = tmp_path / "partial"
    for source in a1.sources:
        target = submission / source
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((released / source).read_bytes())
    reference = (REPO / owner).read_text()
    (submission / owner).write_text(
        strip_solutions(reference, owner, "a1", keep=lambda r: r.function == pasted_region)
    )
    report = grade(REPO, "a1", submission=submission)
    expected = points_needing_only(a1, {pasted_region})
    assert expected > points_needing_only(a1, set())
    passed = {r.test.test for r in report.results if r.outcome == "passed"}
    needing = {
        t.test
        for t in a1.tests
        if t.visibility == "public" and t.regions is not None and set(t.regions) <= {pasted_region}
    }
    assert passed == needing
    assert report.score == expected
    assert len(report.results) == len(a1.selected_tests(hidden=False))
