"""dlcc.course.site without MkDocs: sections by heading, links, the schedule, the pages."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from site_helpers import ROOT

from dlcc.course.catalogue import Assignment, Catalogue, GradedTest, load_catalogue
from dlcc.course.errors import CourseError
from dlcc.course.site import (
    API_MODULES,
    nav,
    paragraph_block,
    preamble,
    rewrite_links,
    schedule,
    section,
    site_pages,
)

README = """\
# A course

The opening paragraph.

```bash
make demo
```

## Tour

**First.** One.

Still first.

```python
## not a heading: inside a fence
```

**Second.** Two.

## Results

| what | result |
|---|---|
| x | 1 |

### A sub-heading

Under Results still.

## GPU install

Install CUDA.
"""


def test_section_runs_to_the_next_heading_of_its_level():
    assert section(README, "## GPU install") == "Install CUDA.\n"
    results = section(README, "## Results")
    assert results.startswith("| what | result |")
    assert "### A sub-heading" in results and "Under Results still." in results
    assert "GPU" not in results


def test_a_heading_inside_a_fence_is_not_a_heading():
    tour = section(README, "## Tour")
    assert "## not a heading: inside a fence" in tour
    assert tour.rstrip().endswith("**Second.** Two.")


def test_a_missing_heading_says_what_was_expected_and_what_is_there():
    with pytest.raises(CourseError) as error:
        section(README, "## Set-up")
    message = str(error.value)
    assert "README.md" in message and "'## Set-up'" in message
    assert "'## Tour', '## Results', '## GPU install'" in message
    assert "put the heading back" in message


def test_preamble_and_its_missing_title():
    title, opening = preamble(README)
    assert title == "A course"
    assert opening.startswith("The opening paragraph.") and "make demo" in opening
    assert "Tour" not in opening
    with pytest.raises(CourseError, match=r"first line '# TITLE'.*'## Tour'"):
        preamble("## Tour\n\ntext\n")


def test_paragraph_block_runs_to_the_next_bold_lead():
    block = paragraph_block(section(README, "## Tour"), "**First.**")
    assert block.startswith("**First.** One.") and "Still first." in block
    assert "inside a fence" in block and "Second" not in block
    with pytest.raises(CourseError, match=re.escape("begins '**Third.**'")):
        paragraph_block(README, "**Third.**")


PAGES = {"assignments/a3/README.md": "assignments/a3.md", "README.md": "index.md"}


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("See [A3](../a3/README.md).", "See [A3](a3.md)."),
        ("See [Dice](../a3/README.md#part-2-the-dice-loss).",
         "See [Dice](a3.md#part-2-the-dice-loss)."),
        ("See [the README](../../README.md).", "See [the README](../index.md)."),
        ("![mask](../../docs/images/x.png)", "![mask](../images/x.png)"),
        ("Read [DESIGN.md](../../DESIGN.md).", "Read `DESIGN.md`."),
        ("Read [the tests](../../tests/course/a1/test_x.py).",
         "Read the tests (`tests/course/a1/test_x.py`)."),
        ("[PyTorch](https://pytorch.org) and [here](#goals)",
         "[PyTorch](https://pytorch.org) and [here](#goals)"),
        ("`[code](../../DESIGN.md)` stays", "`[code](../../DESIGN.md)` stays"),
        ("```md\n[DESIGN](../../DESIGN.md)\n```\n", "```md\n[DESIGN](../../DESIGN.md)\n```\n"),
    ],
)  # fmt: skip
def test_rewrite_links(markdown, expected):
    source = "assignments/a1/README.md"
    assert rewrite_links(markdown, source, "assignments/a1.md", PAGES) == expected


def test_rewrite_links_from_the_readme():
    text = "[DESIGN.md](DESIGN.md) and ![val](docs/images/isbi_unet_val.png)"
    assert rewrite_links(text, "README.md", "results.md", PAGES) == (
        "`DESIGN.md` and ![val](images/isbi_unet_val.png)"
    )


def test_schedule_from_a_catalogue(tmp_path):
    def tests(*specs):
        return tuple(
            GradedTest(f"test_x.py::test_{i}", points, visibility, part)
            for i, (points, visibility, part) in enumerate(specs)
        )

    catalogue = Catalogue(
        tmp_path,
        {
            "b1": Assignment(
                "b1", "First", "assignments/b1/README.md",
                tests=tests((3, "public", "Part 1: x"), (2, "public", "Part 2: y"),
                            (1.5, "hidden", "Part 1: x")),
            ),
            "b2": Assignment("b2", "Second", "assignments/b2/README.md", status="planned"),
        },
    )  # fmt: skip
    rows = [line for line in schedule(catalogue).splitlines() if line.startswith("| ")]
    assert rows[1:] == [
        "| 1 | b1: [First](assignments/b1.md) | 5 | 1.5 | Part 1: x (4.5); Part 2: y (2) |",
        "| 2 | b2: [Second](assignments/b2.md) (planned) | 0 | 0 | - |",
    ]


def test_the_menu_lists_every_assignment_and_module():
    menu = nav(site_pages(ROOT))
    titles = [next(iter(entry)) for entry in menu]
    assert titles == ["Home", "Set-up (CPU and GPU)", "Schedule", "Assignments", "Results",
                      "API reference"]  # fmt: skip
    assignments = menu[3]["Assignments"]
    catalogue = load_catalogue(ROOT)
    assert [next(iter(e.values())) for e in assignments] == [
        f"assignments/{a}.md" for a in catalogue.assignments
    ]
    api = [next(iter(e.values())) for e in menu[5]["API reference"]]
    assert api == ["api/index.md"] + [f"api/{m}.md" for m in API_MODULES]


def test_every_api_module_is_in_the_package():
    for module in API_MODULES:
        path = ROOT / "src" / Path(*module.split("."))
        assert path.with_suffix(".py").is_file() or (path / "__init__.py").is_file(), module


def test_a_handout_page_is_the_handout(tmp_path):
    pages = {p.src_uri: p.content for p in site_pages(ROOT)}
    for assignment in load_catalogue(ROOT).assignments.values():
        handout = (ROOT / assignment.handout).read_text(encoding="utf-8")
        assert "<!--" not in handout or "<!--" in pages[f"assignments/{assignment.id}.md"]
        assert pages[f"assignments/{assignment.id}.md"] == handout, (
            f"{assignment.handout}: its page differs from it (a link was rewritten?)"
        )


def test_missing_sources_say_what_to_do(tmp_path):
    with pytest.raises(CourseError, match=r"README\.md does not exist: the course site takes"):
        site_pages(tmp_path)
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    with pytest.raises(CourseError, match=r"catalogue\.toml does not exist.*build the site from"):
        site_pages(tmp_path)
