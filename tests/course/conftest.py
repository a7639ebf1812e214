"""Shared by the course tests: the marker of the slow end-to-end tests (select: -m
course_integration), and `releases`, each assignment's release of this checkout."""

from pathlib import Path

import pytest

import dlcc

REPO = Path(dlcc.__file__).resolve().parents[2]


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", "course_integration: grades a real assignment end to end (slow)"
    )


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    """releases(assignment_id): that assignment's release, made once per test module."""
    from dlcc.course.release import release

    made = {}

    def get(assignment_id: str) -> Path:
        if assignment_id not in made:
            folder = tmp_path_factory.mktemp(assignment_id) / "release"
            made[assignment_id] = release(REPO, assignment_id, folder)
        return made[assignment_id]

    return get
