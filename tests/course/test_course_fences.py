"""Solution fences: parsing, stubbing, and the errors an instructor gets for a bad fence."""

from __future__ import annotations

import textwrap

import pytest

from dlcc.course.errors import CourseError
from dlcc.course.fences import parse_regions, strip_solutions
from dlcc.errors import DlccError

REFERENCE = textwrap.dedent(
    '''\
    import numpy as np


    class Linear:
        """Docstring.

        # BEGIN SOLUTION inside a docstring is text, not a fence
        """

        def forward(self, x):
            # BEGIN SOLUTION Linear.forward: z = x @ W.T + b
            z = x @ self.weight.T
            if z is None:
                raise ValueError("never")
            # END SOLUTION

            # BEGIN PROMPT
            # Hint: cache what backward needs on self.
            # END PROMPT
            return z

        def backward(self, grad):
            # BEGIN SOLUTION
            return grad
            # END SOLUTION


    def relu(x):
        def inner(y):
            # BEGIN SOLUTION
            return np.maximum(y, 0)
            # END SOLUTION

        return inner(x)
    '''
)


def test_regions_are_found_with_descriptions_and_prompts():
    regions = parse_regions(REFERENCE, "layers.py")
    assert [r.function for r in regions] == ["Linear.forward", "Linear.backward", "relu.inner"]
    assert [r.description for r in regions] == [
        "Linear.forward: z = x @ W.T + b",
        "implement Linear.backward",
        "implement relu.inner",
    ]
    assert regions[0].prompt == ("        # Hint: cache what backward needs on self.\n",)
    assert (regions[0].begin_line, regions[0].end_line, regions[0].last_line) == (11, 15, 19)
    assert regions[1].prompt == ()


def test_stub_replaces_each_region_with_prompt_and_raise():
    student = strip_solutions(REFERENCE, "layers.py", "a1")
    assert "x @ self.weight.T" not in student
    assert "np.maximum" not in student
    assert "BEGIN SOLUTION Linear" not in student and "END SOLUTION" not in student
    assert "PROMPT" not in student
    expected_forward = (
        "    def forward(self, x):\n"
        "        # Hint: cache what backward needs on self.\n"
        '        raise NotImplementedError("a1: Linear.forward: z = x @ W.T + b")\n'
        "        return z\n"
    )
    assert expected_forward in student
    assert '        raise NotImplementedError("a1: implement Linear.backward")\n' in student
    assert '        raise NotImplementedError("a1: implement relu.inner")\n' in student
    # Lines outside regions are unchanged, the docstring's fence-like text included.
    assert "# BEGIN SOLUTION inside a docstring is text, not a fence" in student
    assert student.startswith("import numpy as np\n\n\nclass Linear:\n")
    compile(student, "layers.py", "exec")


def test_stubbed_code_raises_the_assignment_message():
    namespace: dict = {}
    exec(compile(strip_solutions(REFERENCE, "layers.py", "a7"), "layers.py", "exec"), namespace)
    with pytest.raises(NotImplementedError, match=r"^a7: implement Linear\.backward$"):
        namespace["Linear"]().backward(1.0)


def test_reference_runs_unchanged_and_keep_restores_one_region():
    kept = strip_solutions(REFERENCE, "layers.py", "a1", keep=lambda r: r.function == "relu.inner")
    assert "return np.maximum(y, 0)" in kept
    assert "x @ self.weight.T" not in kept
    assert "BEGIN" not in kept.replace("# BEGIN SOLUTION inside a docstring", "")
    namespace: dict = {}
    exec(compile(kept, "layers.py", "exec"), namespace)
    assert namespace["relu"](-3) == 0


def test_same_input_gives_same_bytes_and_crlf_is_kept():
    crlf = REFERENCE.replace("\n", "\r\n")
    first = strip_solutions(crlf, "layers.py", "a1")
    assert first == strip_solutions(crlf, "layers.py", "a1")
    assert "\n" not in first.replace("\r\n", "")
    assert first == strip_solutions(REFERENCE, "layers.py", "a1").replace("\n", "\r\n")


def test_file_without_regions_is_unchanged():
    text = "def f():\n    return 1  # BEGIN SOLUTION after code is not a fence\n"
    assert parse_regions(text, "plain.py") == []
    assert strip_solutions(text, "plain.py", "a1") == text


def test_description_with_quotes_stays_a_valid_literal():
    text = 'def f():\n    # BEGIN SOLUTION say "hi" \\ then\n    return 1\n    # END SOLUTION\n'
    student = strip_solutions(text, "q.py", "a1")
    namespace: dict = {}
    exec(compile(student, "q.py", "exec"), namespace)
    with pytest.raises(NotImplementedError) as error:
        namespace["f"]()
    assert str(error.value) == 'a1: say "hi" \\ then'


def fenced(body: str) -> str:
    return textwrap.dedent(body)


BAD_FENCES = [
    (
        "unpaired begin",
        "def f():\n    # BEGIN SOLUTION\n    return 1\n",
        "f.py:2: BEGIN SOLUTION has no matching END SOLUTION",
    ),
    (
        "unpaired end",
        "def f():\n    return 1\n    # END SOLUTION\n",
        "f.py:3: END SOLUTION without a BEGIN SOLUTION",
    ),
    (
        "nested",
        "def f():\n    # BEGIN SOLUTION\n    # BEGIN SOLUTION\n    return 1\n"
        "    # END SOLUTION\n    # END SOLUTION\n",
        "f.py:3: BEGIN SOLUTION inside the region opened at line 2",
    ),
    (
        "prompt not after a solution",
        "def f():\n    x = 1\n    # BEGIN PROMPT\n    # hint\n    # END PROMPT\n    return x\n",
        "f.py:3: BEGIN PROMPT must come right after an END SOLUTION",
    ),
    (
        "prompt after code",
        "def f():\n    # BEGIN SOLUTION\n    x = 1\n    # END SOLUTION\n    y = 2\n"
        "    # BEGIN PROMPT\n    # hint\n    # END PROMPT\n    return x\n",
        "f.py:6: BEGIN PROMPT must come right after an END SOLUTION",
    ),
    (
        "prompt inside a solution",
        "def f():\n    # BEGIN SOLUTION\n    # BEGIN PROMPT\n    # END PROMPT\n    return 1\n"
        "    # END SOLUTION\n",
        "f.py:3: BEGIN PROMPT inside the solution region opened at line 2",
    ),
    (
        "prompt line is code",
        "def f():\n    # BEGIN SOLUTION\n    return 1\n    # END SOLUTION\n"
        "    # BEGIN PROMPT\n    x = 2\n    # END PROMPT\n",
        "f.py:6: a prompt line must be a comment",
    ),
    (
        "end indented differently",
        "def f():\n    # BEGIN SOLUTION\n    x = 1\n        # END SOLUTION\n    return x\n",
        "f.py:4: END SOLUTION is indented",
    ),
    (
        "module level",
        "# BEGIN SOLUTION\nX = 1\n# END SOLUTION\n",
        "f.py:1: this solution region is at module level",
    ),
    (
        "class body",
        "class A:\n    # BEGIN SOLUTION\n    x = 1\n    # END SOLUTION\n",
        "f.py:2: this solution region is at a class body",
    ),
    (
        "typo in a fence",
        "def f():\n    # BEGIN SOLUTIONS\n    return 1\n    # END SOLUTION\n",
        "f.py:2: '# BEGIN SOLUTIONS' looks like a fence but is not one",
    ),
    (
        "lower case",
        "def f():\n    # begin solution\n    return 1\n",
        "f.py:2: '# begin solution' looks like a fence",
    ),
    (
        "region cuts a statement",
        "def f():\n    x = [\n        # BEGIN SOLUTION\n        1,\n        # END SOLUTION\n    ]\n"
        "    return x\n",
        "f.py:3: the stubbed file does not compile",
    ),
    (
        "region leaves its block",
        "def f(a):\n    if a:\n        # BEGIN SOLUTION\n        x = 1\n    y = 2\n"
        "        # END SOLUTION\n    return y\n",
        "f.py:5: this line is indented less than the BEGIN SOLUTION on line 3",
    ),
    (
        "reference does not compile",
        "def f(:\n    return 1\n",
        "f.py:1: the reference does not compile",
    ),
]


@pytest.mark.parametrize(
    ("text", "message"), [case[1:] for case in BAD_FENCES], ids=[case[0] for case in BAD_FENCES]
)
def test_bad_fences_name_file_line_and_problem(text, message):
    with pytest.raises(CourseError) as error:
        strip_solutions(text, "f.py", "a1")
    assert message in str(error.value)
    assert isinstance(error.value, DlccError)


def test_region_holding_a_whole_block_is_fine():
    text = fenced(
        """\
        def f(a):
            # BEGIN SOLUTION
            if a:
                return 1
            return 2
            # END SOLUTION
        """
    )
    student = strip_solutions(text, "f.py", "a1")
    assert student == 'def f(a):\n    raise NotImplementedError("a1: implement f")\n'
