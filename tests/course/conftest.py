"""Registers the marker of the slow end-to-end course tests (select: -m course_integration)."""


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", "course_integration: grades a real assignment end to end (slow)"
    )
