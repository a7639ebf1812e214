"""The course site's pages, generated at build time from the handouts, the README and the package.

`mkdocs.yml` names `docs/hooks.py`, which hands MkDocs' events to this module. Nothing is
copied into `docs/`: every page is made here, in memory, from the one source it shows:

- `index.md`: the README's title and opening paragraph;
- `setup.md`: the README's install commands, its `dlcc doctor` paragraph and `## GPU install`;
- `schedule.md`: the catalogue (`assignments/catalogue.toml`): order, title, parts, points;
- `assignments/aN.md`: the handout (`assignments/aN/README.md`) as it is, its links rewritten
  only where they point at files the site does not have (`rewrite_links`);
- `results.md`: the README's `## Results`;
- `api/MODULE.md`: one `::: MODULE` directive (mkdocstrings) for each of `API_MODULES`.

Each function here is plain text in, text out, so the tests call it without MkDocs.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from pathlib import Path

from dlcc.course.catalogue import CATALOGUE_PATH, Assignment, Catalogue, load_catalogue
from dlcc.course.errors import CourseError

README = "README.md"
DOCS_DIR = "docs"

# The public modules that get an API reference page, in the order of the site's menu.
API_MODULES = (
    "dlcc.numpy_nn.layers",
    "dlcc.numpy_nn.losses",
    "dlcc.numpy_nn.optim",
    "dlcc.numpy_nn.conv",
    "dlcc.numpy_nn.pooling",
    "dlcc.numpy_nn.recurrent",
    "dlcc.numpy_nn.gradcheck",
    "dlcc.models.unet",
    "dlcc.segmentation.losses",
    "dlcc.segmentation.metrics",
    "dlcc.segmentation.tiling",
    "dlcc.ecg.detector",
    "dlcc.ecg.preprocess",
    "dlcc.ecg.scoring",
    "dlcc.training.tasks",
    "dlcc.deploy.inputs",
    "dlcc.deploy.batching",
    "dlcc.deploy.models",
    "dlcc.deploy.metrics",
    "dlcc.course.fences",
)

# The README's sections the pages are made of, by heading.
RESULTS_HEADING = "## Results"
GPU_HEADING = "## GPU install"
TOUR_HEADING = "## Tour"
DOCTOR_LEAD = "**Check the machine first.**"

FENCE = re.compile(r"^\s*(```+|~~~+)")
# [text](target "title") and ![alt](target); the target has no spaces or brackets.
LINK = re.compile(
    r"(?P<bang>!?)\[(?P<text>[^\]]*)\]\((?P<target>[^)\s]+)(?P<title>\s+\"[^\"]*\")?\)"
)
CODE_SPAN = re.compile(r"(`+)(?:.+?)\1")
EXTERNAL = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*:|//|#)")


@dataclass(frozen=True)
class Page:
    """One generated page: where it lives on the site (`src_uri`), its menu title, its text."""

    src_uri: str
    title: str
    content: str


# ---- the README, by heading ----------------------------------------------------------------


def _headings(lines: list[str]) -> list[tuple[int, int, str]]:
    """(line index, level, heading line) of each ATX heading outside fenced code."""
    found = []
    fenced = None
    for index, line in enumerate(lines):
        match = FENCE.match(line)
        if match:
            marker = match.group(1)[0] * 3
            if fenced is None:
                fenced = marker
            elif marker == fenced:
                fenced = None
            continue
        if fenced is None:
            heading = re.match(r"^(#{1,6})\s", line)
            if heading:
                found.append((index, len(heading.group(1)), line.rstrip()))
    return found


def section(text: str, heading: str, where: str = README) -> str:
    """The body under `heading` (for example "## Results"), up to the next heading of the same
    or a higher level; the heading line itself is left out. `CourseError` when it is absent."""
    lines = text.splitlines()
    headings = _headings(lines)
    level = len(heading) - len(heading.lstrip("#"))
    for position, (index, found_level, line) in enumerate(headings):
        if line == heading.rstrip():
            end = len(lines)
            for later_index, later_level, _ in headings[position + 1 :]:
                if later_level <= found_level:
                    end = later_index
                    break
            return "\n".join(lines[index + 1 : end]).strip("\n") + "\n"
    present = ", ".join(f"'{line}'" for _, lvl, line in headings if lvl == level) or "none"
    raise CourseError(
        f"{where}: the course site needs the section '{heading.rstrip()}', and there is none "
        f"(its level-{level} headings: {present}); put the heading back, or change "
        "dlcc/course/site.py to the new one"
    )


def preamble(text: str, where: str = README) -> tuple[str, str]:
    """The README's title (its `# ` line, without the marks) and the text between it and the
    first `## ` heading. `CourseError` when it has no title."""
    lines = text.splitlines()
    headings = _headings(lines)
    if not headings or headings[0][1] != 1:
        first = headings[0][2] if headings else "no heading at all"
        raise CourseError(
            f"{where}: the course site takes its title from a first line '# TITLE', and the "
            f"first heading is {first!r}; start the file with '# TITLE'"
        )
    start = headings[0][0]
    end = next((index for index, level, _ in headings[1:] if level <= 2), len(lines))
    return headings[0][2][2:].strip(), "\n".join(lines[start + 1 : end]).strip("\n") + "\n"


def paragraph_block(text: str, lead: str, where: str = README) -> str:
    """The paragraphs starting at the one that begins with `lead` (for example
    "**Check the machine first.**"), up to the next paragraph that begins with `**`.
    `CourseError` when no paragraph begins with `lead`."""
    blocks = re.split(r"\n(?:[ \t]*\n)+", text.strip("\n"))
    for start, block in enumerate(blocks):
        if block.startswith(lead):
            end = next(
                (i for i in range(start + 1, len(blocks)) if blocks[i].startswith("**")),
                len(blocks),
            )
            return "\n\n".join(blocks[start:end]).strip("\n") + "\n"
    raise CourseError(
        f"{where}: the course site needs the paragraph that begins {lead!r}, and no paragraph "
        "begins so; put it back, or change dlcc/course/site.py to the new one"
    )


# ---- links ----------------------------------------------------------------------------------


def _outside_code(line: str, change) -> str:
    """`change` applied to the parts of `line` that are not code spans."""
    out, last = [], 0
    for span in CODE_SPAN.finditer(line):
        out.append(change(line[last : span.start()]))
        out.append(span.group(0))
        last = span.end()
    out.append(change(line[last:]))
    return "".join(out)


def rewrite_links(text: str, source: str, site_uri: str, pages: dict[str, str]) -> str:
    """Make the Markdown links of `source` (a repository path such as
    "assignments/a3/README.md") resolve on the site, where its text is the page `site_uri`.

    `pages` maps repository paths to site pages ("assignments/a3/README.md" ->
    "assignments/a3.md"). A relative link to one of them points at its page (a `#fragment`
    kept); a link into `docs/` points at the same file on the site; any other relative link (a
    file of the repository the site does not have) becomes its text followed by the path in
    code, as `DESIGN.md` becomes `` `DESIGN.md` ``. Links with a scheme, `//` or a bare
    `#fragment`, and everything inside code, are left as they are.
    """
    source_dir = posixpath.dirname(source)
    site_dir = posixpath.dirname(site_uri)

    def replace(match: re.Match) -> str:
        target = match.group("target")
        if EXTERNAL.match(target):
            return match.group(0)
        path, hash_, fragment = target.partition("#")
        repo_path = posixpath.normpath(posixpath.join(source_dir, path))
        if repo_path in pages:
            new = posixpath.relpath(pages[repo_path], site_dir) + hash_ + fragment
        elif repo_path.startswith(DOCS_DIR + "/"):
            new = posixpath.relpath(repo_path[len(DOCS_DIR) + 1 :], site_dir) + hash_ + fragment
        else:
            text_part = match.group("text")
            if text_part.strip("`") == repo_path or text_part.strip("`") == path:
                return f"`{repo_path}`"
            return f"{text_part} (`{repo_path}`)"
        return f"{match.group('bang')}[{match.group('text')}]({new}{match.group('title') or ''})"

    def change(part: str) -> str:
        return LINK.sub(replace, part)

    lines, fenced = [], None
    for line in text.splitlines(keepends=True):
        match = FENCE.match(line)
        if match:
            marker = match.group(1)[0] * 3
            fenced = marker if fenced is None else (None if marker == fenced else fenced)
            lines.append(line)
        elif fenced is not None:
            lines.append(line)
        else:
            lines.append(_outside_code(line, change))
    return "".join(lines)


# ---- the pages -----------------------------------------------------------------------------


def assignment_uri(assignment: Assignment) -> str:
    return f"assignments/{assignment.id}.md"


def api_uri(module: str) -> str:
    return f"api/{module}.md"


def _points(value: float) -> str:
    return f"{value:g}"


def schedule(catalogue: Catalogue) -> str:
    """The schedule page: one row per assignment in the catalogue's order, then its parts."""
    lines = [
        "# Schedule",
        "",
        "The assignments in order, from `assignments/catalogue.toml`. Public tests come with",
        "the assignment (`dlcc course grade aN` runs them); hidden tests are graded after",
        "submission.",
        "",
        "| # | assignment | public points | hidden points | parts |",
        "|---|---|---|---|---|",
    ]
    for number, assignment in enumerate(catalogue.assignments.values(), start=1):
        link = f"[{assignment.title}]({assignment_uri(assignment)})"
        if assignment.planned:
            link += " (planned)"
        parts: dict[str, float] = {}
        for test in assignment.tests:
            parts[test.part] = parts.get(test.part, 0.0) + test.points
        part_text = "; ".join(f"{part} ({_points(points)})" for part, points in parts.items())
        lines.append(
            f"| {number} | {assignment.id}: {link} | {_points(assignment.points('public'))} "
            f"| {_points(assignment.points('hidden'))} | {part_text or '-'} |"
        )
    return "\n".join(lines) + "\n"


def api_page(module: str) -> str:
    return f"# `{module}`\n\n::: {module}\n"


def api_index() -> str:
    lines = [
        "# API reference",
        "",
        "Generated from the package's docstrings (mkdocstrings), for the modules the",
        "assignments build on.",
        "",
    ]
    lines += [f"- [`{module}`]({module}.md)" for module in API_MODULES]
    return "\n".join(lines) + "\n"


def site_pages(root: str | Path) -> list[Page]:
    """Every generated page of the course rooted at `root`, in the order of the site's menu.
    `CourseError` (what was expected, what was found) when a source is missing."""
    root = Path(root)
    readme_path = root / README
    try:
        readme = readme_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CourseError(
            f"{readme_path} does not exist: the course site takes its home, set-up and results "
            "pages from the README at the course root"
        ) from None
    if not (root / CATALOGUE_PATH).is_file():
        raise CourseError(
            f"{root / CATALOGUE_PATH} does not exist: the course site makes its schedule and one "
            "page per handout from the catalogue; build the site from the course root (the "
            "folder with mkdocs.yml, README.md and assignments/)"
        )
    catalogue = load_catalogue(root)
    handouts = {a.handout: assignment_uri(a) for a in catalogue.assignments.values()}
    handouts[README] = "index.md"

    def from_readme(body: str, uri: str) -> str:
        return rewrite_links(body, README, uri, handouts)

    title, opening = preamble(readme)
    doctor = paragraph_block(section(readme, TOUR_HEADING), DOCTOR_LEAD)
    intro, fence, install = opening.partition("```")
    install = fence + install
    pages = [
        Page(
            "index.md",
            "Home",
            from_readme(f"# {title}\n\n{intro.strip()}\n\n", "index.md")
            + "- [Set-up (CPU and GPU)](setup.md)\n- [Schedule](schedule.md)\n"
            + "- [Results](results.md)\n- [API reference](api/index.md)\n",
        ),
        Page(
            "setup.md",
            "Set-up (CPU and GPU)",
            from_readme(
                f"# Set-up (CPU and GPU)\n\n{install.strip()}\n\n"
                f"## Check the machine\n\n{doctor}\n"
                f"{GPU_HEADING}\n\n{section(readme, GPU_HEADING)}",
                "setup.md",
            ),
        ),
        Page("schedule.md", "Schedule", schedule(catalogue)),
    ]
    for assignment in catalogue.assignments.values():
        handout_path = root / assignment.handout
        try:
            handout = handout_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise CourseError(
                f"{handout_path} does not exist: the catalogue's [{assignment.id}] names it as "
                "the handout; write it, or correct `handout` in assignments/catalogue.toml"
            ) from None
        uri = assignment_uri(assignment)
        pages.append(
            Page(
                uri,
                f"{assignment.id}: {assignment.title}",
                rewrite_links(handout, assignment.handout, uri, handouts),
            )
        )
    pages.append(
        Page(
            "results.md",
            "Results",
            from_readme(f"# Results\n\n{section(readme, RESULTS_HEADING)}", "results.md"),
        )
    )
    pages.append(Page("api/index.md", "API reference", api_index()))
    pages += [Page(api_uri(module), module, api_page(module)) for module in API_MODULES]
    return pages


def nav(pages: list[Page]) -> list:
    """The site's menu: the top pages, then "Assignments" and "API reference" as groups."""
    top, assignments, api = [], [], []
    for page in pages:
        if page.src_uri.startswith("assignments/"):
            assignments.append({page.title: page.src_uri})
        elif page.src_uri.startswith("api/"):
            api.append({page.title: page.src_uri})
        else:
            top.append({page.title: page.src_uri})
    return [*top[:3], {"Assignments": assignments}, *top[3:], {"API reference": api}]


# ---- MkDocs' events (docs/hooks.py calls these) ---------------------------------------------


def course_root(config) -> Path:
    """The course root: the folder that holds mkdocs.yml."""
    return Path(config["config_file_path"]).resolve().parent


def on_config(config):
    """Set the menu from the generated pages (an explicit `nav:` in mkdocs.yml is refused)."""
    if config.get("nav"):
        raise CourseError(
            f"{config['config_file_path']}: has a `nav:`, and the course site makes its menu "
            "from the catalogue and the README (dlcc/course/site.py); remove `nav:`"
        )
    config["nav"] = nav(site_pages(course_root(config)))
    return config


def on_files(files, config):
    """Add each generated page to MkDocs' files, as a file that lives only in memory."""
    from mkdocs.structure.files import File

    for page in site_pages(course_root(config)):
        existing = files.get_file_from_path(page.src_uri)
        if existing is not None:
            raise CourseError(
                f"{DOCS_DIR}/{page.src_uri} exists, and the course site generates that page "
                f"(dlcc/course/site.py); remove {DOCS_DIR}/{page.src_uri}"
            )
        files.append(File.generated(config, page.src_uri, content=page.content))
    return files
