"""`did_you_mean`: the one "did you mean" hint every error message uses."""

import pytest

from dlcc.suggest import did_you_mean


@pytest.mark.parametrize(
    ("word", "choices", "expected"),
    [
        ("epochz", ["seed", "epochs", "device"], " (did you mean 'epochs'?)"),
        ("hflp", ("hflip", "random_crop"), " (did you mean 'hflip'?)"),
        ("smal_cnn", {"mlp": 1, "small_cnn": 2}, " (did you mean 'small_cnn'?)"),  # dict keys
        ("xyz", ["epochs", "seed"], ""),  # nothing close
        ("epochs", [], ""),  # nothing to choose from
        ("lr", ["lr", "lrr"], " (did you mean 'lr'?)"),  # an exact match is the closest
    ],
)
def test_did_you_mean(word, choices, expected):
    assert did_you_mean(word, choices) == expected


def test_non_string_words_and_choices_are_compared_as_text():
    assert did_you_mean(12, ["123", "abc"]) == " (did you mean '123'?)"
    assert did_you_mean("123", [12, 99]) == " (did you mean '12'?)"


def test_one_choice_is_named_even_when_several_are_close():
    hint = did_you_mean("abcd", ["abce", "abcf"])
    assert hint in (" (did you mean 'abce'?)", " (did you mean 'abcf'?)")
    assert did_you_mean("abcd", ["abcf", "abce"]) == hint  # whatever the order of the choices


def test_it_reads_straight_after_the_unknown_name():
    key = "timeout_sec"
    message = f"unknown key {key!r}{did_you_mean(key, ['timeout_s', 'points'])}"
    assert message == "unknown key 'timeout_sec' (did you mean 'timeout_s'?)"
