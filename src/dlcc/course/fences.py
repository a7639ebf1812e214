"""Solution regions: find them in the reference source and stub them for learners.

Pure functions on text; nothing here reads or writes files. The grammar, inside a function
body of the package's own ``.py`` source::

    def forward(self, x):
        # BEGIN SOLUTION Linear.forward: z = x @ W.T + b
        ...reference code...
        # END SOLUTION
        # BEGIN PROMPT
        # Hint: cache what backward needs on self.
        # END PROMPT

- ``# BEGIN SOLUTION [description]`` opens a region, ``# END SOLUTION`` closes it at the same
  indentation. The description (free text) becomes the stub's message; without one it is
  ``implement <Class.method>``, the qualified name of the enclosing function.
- An optional ``# BEGIN PROMPT`` ... ``# END PROMPT`` block follows its ``# END SOLUTION``
  (blank lines allowed between). Its lines are comments, so the reference runs unchanged.
- The student copy replaces each region, at the indentation of its BEGIN line, with the prompt
  lines (verbatim) and ``raise NotImplementedError("<assignment id>: <description>")``. The
  fence lines disappear; every other line is kept byte for byte.

Fences are found with `tokenize`, so text inside strings and docstrings never counts. Anything
that looks like a fence but is not exactly one, a region that is unpaired, nested, not inside a
function body, or that cuts a statement in two, raises `CourseError` naming ``file:line``.
The output is a function of the input text alone (same input, same bytes out).
"""

from __future__ import annotations

import ast
import json
import re
import tokenize
from collections.abc import Callable
from dataclasses import dataclass

from dlcc.course.errors import CourseError

BEGIN_SOLUTION = re.compile(r"#+[ \t]*BEGIN SOLUTION(?:[ \t]+(?P<description>\S.*?))?[ \t]*")
END_SOLUTION = re.compile(r"#+[ \t]*END SOLUTION[ \t]*")
BEGIN_PROMPT = re.compile(r"#+[ \t]*BEGIN PROMPT[ \t]*")
END_PROMPT = re.compile(r"#+[ \t]*END PROMPT[ \t]*")
# A comment that starts like a fence but matches none of the four forms above is a typo
# (``# BEGIN SOLUTIONS``, ``# end solution``): refuse it rather than leak a solution.
FENCE_LIKE = re.compile(r"#+[ \t]*(begin|end)[ \t_-]*(solution|prompt)", re.IGNORECASE)
LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")
PLACEHOLDER = "\x00"
SKIPPED_TOKENS = {
    tokenize.NL,
    tokenize.NEWLINE,
    tokenize.INDENT,
    tokenize.DEDENT,
    tokenize.ENDMARKER,
}


@dataclass(frozen=True)
class Region:
    """One fenced solution region of a reference file (line numbers are 1-based)."""

    begin_line: int  # the ``# BEGIN SOLUTION`` line
    end_line: int  # the ``# END SOLUTION`` line
    last_line: int  # the last line the stub replaces: ``# END PROMPT`` if there is a prompt
    indent: str  # the BEGIN line's leading whitespace
    function: str  # qualified name of the enclosing function, e.g. "Linear.forward"
    description: str  # the text after BEGIN SOLUTION, else "implement <function>"
    prompt: tuple[str, ...]  # the prompt block's inner lines, verbatim with their line endings


@dataclass(frozen=True)
class _Marker:
    kind: str  # "begin", "end", "begin_prompt", "end_prompt"
    line: int
    indent: str
    description: str | None = None


def split_lines(text: str) -> list[str]:
    """Lines with their endings kept (``\\n``, ``\\r\\n`` or ``\\r``), as Python reads source."""
    return LINE.findall(text)


def parse_regions(text: str, filename: str = "<source>") -> list[Region]:
    """Find and check every solution region in `text` (a whole ``.py`` file).

    Returns the regions in file order; raises `CourseError` ("file:line: what is wrong") for a
    reference that does not compile or a malformed fence.
    """
    lines = split_lines(text)
    _compile(text, filename, "the reference does not compile")
    markers, line_starts = _find_markers(lines, filename)
    if not markers:
        return []
    spans = _pair_markers(markers, line_starts, lines, filename)
    tree = ast.parse(text, filename)
    for begin, end, _prompt in spans:
        _check_whole_statements(tree, begin, end, filename)
    functions = _enclosing_functions(lines, spans, filename)
    regions = []
    for (begin, end, prompt), function in zip(spans, functions, strict=True):
        prompt_lines = tuple(lines[prompt[0] : prompt[1] - 1]) if prompt else ()
        regions.append(
            Region(
                begin_line=begin.line,
                end_line=end.line,
                last_line=prompt[1] if prompt else end.line,
                indent=begin.indent,
                function=function,
                description=begin.description or f"implement {function}",
                prompt=prompt_lines,
            )
        )
    return regions


def strip_solutions(
    text: str,
    filename: str,
    assignment_id: str,
    keep: Callable[[Region], bool] | None = None,
) -> str:
    """The student version of a reference file: each region replaced by its prompt and a stub.

    `keep(region)` returning True keeps that region's reference code instead (fence and prompt
    lines still removed): an instructor's "paste one solution back" for partial-credit checks.
    A file without regions comes back unchanged. Raises `CourseError` on a malformed fence
    or when the result does not compile.
    """
    regions = parse_regions(text, filename)
    if not regions:
        return text
    lines = split_lines(text)
    messages = [stub_message(assignment_id, region.description) for region in regions]
    output, line_origin = _render(lines, regions, messages, keep)
    _compile("".join(output), filename, "the stubbed file does not compile", line_origin)
    return "".join(output)


def stub_message(assignment_id: str, description: str) -> str:
    """The NotImplementedError message of a stub: ``"a1: implement Linear.forward"``."""
    return f"{assignment_id}: {description}"


def has_fences(text: str) -> bool:
    """Whether `text` contains anything fence-like in a comment (cheap pre-check, no parsing)."""
    return bool(re.search(r"(BEGIN|END)[ \t_-]*(SOLUTION|PROMPT)", text, re.IGNORECASE))


def _render(
    lines: list[str],
    regions: list[Region],
    messages: list[str],
    keep: Callable[[Region], bool] | None,
) -> tuple[list[str], list[int]]:
    """Output lines, and for each output line the 1-based input line it came from."""
    output: list[str] = []
    origin: list[int] = []
    next_line = 1
    for region, message in zip(regions, messages, strict=True):
        for number in range(next_line, region.begin_line):
            output.append(lines[number - 1])
            origin.append(number)
        newline = _ending(lines[region.begin_line - 1])
        if keep is not None and keep(region):
            for number in range(region.begin_line + 1, region.end_line):
                output.append(lines[number - 1])
                origin.append(number)
        else:
            for offset, prompt_line in enumerate(region.prompt):
                output.append(prompt_line)
                origin.append(region.last_line - len(region.prompt) + offset)
            literal = json.dumps(message, ensure_ascii=False)
            output.append(f"{region.indent}raise NotImplementedError({literal}){newline}")
            origin.append(region.begin_line)
        next_line = region.last_line + 1
    for number in range(next_line, len(lines) + 1):
        output.append(lines[number - 1])
        origin.append(number)
    return output, origin


def _ending(line: str) -> str:
    stripped = line.rstrip("\r\n")
    return line[len(stripped) :] or "\n"


def _compile(text: str, filename: str, what: str, line_origin: list[int] | None = None) -> None:
    try:
        compile(text, filename, "exec", dont_inherit=True)
    except SyntaxError as error:
        line = error.lineno or 0
        if line_origin and 0 < line <= len(line_origin):
            line = line_origin[line - 1]
        raise CourseError(f"{filename}:{line}: {what}: {error.msg}") from None
    except ValueError as error:  # e.g. a NUL byte in the source
        raise CourseError(f"{filename}: {what}: {error}") from None


def _find_markers(lines: list[str], filename: str) -> tuple[list[_Marker], set[int]]:
    """The fence comments, and the lines whose first character starts a token (lines inside
    a multi-line string are not among them)."""
    markers: list[_Marker] = []
    line_starts: set[int] = set()
    readline = iter(lines).__next__
    try:
        for token in tokenize.generate_tokens(readline):
            line_number, column = token.start
            line = lines[line_number - 1] if line_number <= len(lines) else ""
            indent = line[:column]
            if token.type in SKIPPED_TOKENS or indent.strip():
                continue  # a comment after code is never a fence
            line_starts.add(line_number)
            if token.type != tokenize.COMMENT:
                continue
            comment = token.string
            marker = _classify(comment, line_number, indent)
            if marker is not None:
                markers.append(marker)
            elif FENCE_LIKE.match(comment):
                raise CourseError(
                    f"{filename}:{line_number}: {comment.strip()!r} looks like a fence but is "
                    "not one: expected exactly '# BEGIN SOLUTION [description]', "
                    "'# END SOLUTION', '# BEGIN PROMPT' or '# END PROMPT'"
                )
    except (tokenize.TokenError, SyntaxError) as error:
        raise CourseError(f"{filename}: cannot read the source: {error}") from None
    return markers, line_starts


def _classify(comment: str, line: int, indent: str) -> _Marker | None:
    match = BEGIN_SOLUTION.fullmatch(comment)
    if match:
        return _Marker("begin", line, indent, match.group("description"))
    for kind, pattern in [
        ("end", END_SOLUTION),
        ("begin_prompt", BEGIN_PROMPT),
        ("end_prompt", END_PROMPT),
    ]:
        if pattern.fullmatch(comment):
            return _Marker(kind, line, indent)
    return None


Span = tuple[_Marker, _Marker, "tuple[int, int] | None"]


def _pair_markers(
    markers: list[_Marker], line_starts: set[int], lines: list[str], filename: str
) -> list[Span]:
    """Pair BEGIN/END (and attach prompts); every malformation raises with its line."""
    spans: list[Span] = []
    index = 0
    while index < len(markers):
        begin = markers[index]
        where = f"{filename}:{begin.line}"
        if begin.kind == "end":
            raise CourseError(f"{where}: END SOLUTION without a BEGIN SOLUTION before it")
        if begin.kind == "begin_prompt":
            raise CourseError(
                f"{where}: BEGIN PROMPT must come right after an END SOLUTION "
                "(only blank lines may sit between them)"
            )
        if begin.kind == "end_prompt":
            raise CourseError(f"{where}: END PROMPT without a BEGIN PROMPT before it")
        if index + 1 >= len(markers):
            raise CourseError(f"{where}: BEGIN SOLUTION has no matching END SOLUTION")
        end = markers[index + 1]
        if end.kind == "begin":
            raise CourseError(
                f"{filename}:{end.line}: BEGIN SOLUTION inside the region opened at line "
                f"{begin.line}: regions cannot nest; close the first with END SOLUTION"
            )
        if end.kind != "end":
            raise CourseError(
                f"{filename}:{end.line}: {_name(end.kind)} inside the solution region opened "
                f"at line {begin.line}: put the prompt after its END SOLUTION"
            )
        if end.indent != begin.indent:
            raise CourseError(
                f"{filename}:{end.line}: END SOLUTION is indented {end.indent!r} but its "
                f"BEGIN SOLUTION (line {begin.line}) is indented {begin.indent!r}; "
                "indent them the same"
            )
        _check_body_indentation(line_starts, lines, begin, end, filename)
        index += 2
        prompt = None
        if index < len(markers) and markers[index].kind == "begin_prompt":
            prompt_begin = markers[index]
            between = lines[end.line : prompt_begin.line - 1]
            if all(not line.strip() for line in between):
                prompt = _take_prompt(markers, index, lines, begin, filename)
                index += 2
        spans.append((begin, end, prompt))
    return spans


def _take_prompt(
    markers: list[_Marker], index: int, lines: list[str], begin: _Marker, filename: str
) -> tuple[int, int]:
    prompt_begin = markers[index]
    if prompt_begin.indent != begin.indent:
        raise CourseError(
            f"{filename}:{prompt_begin.line}: BEGIN PROMPT is indented {prompt_begin.indent!r} "
            f"but its solution region (line {begin.line}) is indented {begin.indent!r}"
        )
    if index + 1 >= len(markers) or markers[index + 1].kind != "end_prompt":
        raise CourseError(
            f"{filename}:{prompt_begin.line}: BEGIN PROMPT has no matching END PROMPT "
            "(fences cannot appear inside a prompt)"
        )
    prompt_end = markers[index + 1]
    if prompt_end.indent != begin.indent:
        raise CourseError(
            f"{filename}:{prompt_end.line}: END PROMPT is indented {prompt_end.indent!r} but "
            f"BEGIN PROMPT (line {prompt_begin.line}) is indented {prompt_begin.indent!r}"
        )
    for number in range(prompt_begin.line + 1, prompt_end.line):
        content = lines[number - 1].strip()
        if content and not content.startswith("#"):
            raise CourseError(
                f"{filename}:{number}: a prompt line must be a comment (so the reference runs "
                f"unchanged); got {content[:60]!r}"
            )
    return prompt_begin.line, prompt_end.line


def _check_body_indentation(
    line_starts: set[int], lines: list[str], begin: _Marker, end: _Marker, filename: str
) -> None:
    """Code and comments in a region sit at or right of its BEGIN line."""
    for number in range(begin.line + 1, end.line):
        line = lines[number - 1]
        if number in line_starts and line.strip() and not line.startswith(begin.indent):
            raise CourseError(
                f"{filename}:{number}: this line is indented less than the BEGIN SOLUTION on "
                f"line {begin.line}; a region must stay inside one block"
            )


def _check_whole_statements(tree: ast.AST, begin: _Marker, end: _Marker, filename: str) -> None:
    """A region holds whole statements: none starts outside it and ends inside, or vice versa."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.stmt):
            continue
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        last = node.end_lineno or node.lineno
        starts_inside = begin.line < first < end.line
        ends_inside = begin.line < last < end.line
        # A block around the region ends at its last statement, which may sit inside the region:
        # only a block that starts inside must also end inside.
        is_block = hasattr(node, "body")
        if starts_inside != ends_inside and (starts_inside or not is_block):
            raise CourseError(
                f"{filename}:{begin.line}: the solution region (lines {begin.line}-{end.line}) "
                f"cuts the statement on lines {first}-{last} in two; move a fence so the "
                "region holds whole statements"
            )


def _enclosing_functions(lines: list[str], spans: list[Span], filename: str) -> list[str]:
    """The qualified name of the function around each region, found on a stubbed copy."""
    fake_regions = [
        Region(begin.line, end.line, prompt[1] if prompt else end.line, begin.indent, "", "", ())
        for begin, end, prompt in spans
    ]
    output, origin = _render(lines, fake_regions, [PLACEHOLDER] * len(spans), None)
    stub_lines = {}
    for number, source_line in enumerate(origin, start=1):
        for region in fake_regions:
            if source_line == region.begin_line and output[number - 1].lstrip().startswith(
                "raise NotImplementedError("
            ):
                stub_lines[number] = region.begin_line
    text = "".join(output)
    try:
        tree = ast.parse(text, filename)
    except SyntaxError as error:
        line = origin[error.lineno - 1] if error.lineno and error.lineno <= len(origin) else 0
        raise CourseError(
            f"{filename}:{line}: the stubbed file does not compile: {error.msg}"
        ) from None
    found: dict[int, str] = {}

    def visit(node: ast.AST, scope: list[tuple[str, bool]]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Raise) and child.lineno in stub_lines:
                source_line = stub_lines[child.lineno]
                if not scope or not scope[-1][1]:
                    where = "a class body" if scope else "module level"
                    raise CourseError(
                        f"{filename}:{source_line}: this solution region is at {where}; "
                        "regions must sit inside a function body"
                    )
                found[source_line] = ".".join(name for name, _ in scope)
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                visit(child, [*scope, (child.name, True)])
            elif isinstance(child, ast.ClassDef):
                visit(child, [*scope, (child.name, False)])
            else:
                visit(child, scope)

    visit(tree, [])
    missing = [begin.line for begin, _end, _prompt in spans if begin.line not in found]
    if missing:
        raise CourseError(f"{filename}:{missing[0]}: cannot place this region's stub")
    return [found[begin.line] for begin, _end, _prompt in spans]


def _name(kind: str) -> str:
    return {
        "begin": "BEGIN SOLUTION",
        "end": "END SOLUTION",
        "begin_prompt": "BEGIN PROMPT",
        "end_prompt": "END PROMPT",
    }[kind]
