"""service.usecases.reject: the served version's thresholds turn its probabilities into an
answer, an uncertain answer with a reason, or "no digit found"."""

from __future__ import annotations

import numpy as np
import pytest

from service.usecases.reject import MAYBE_A_NUMBER, RejectThresholds, judge
from service.vision import NoDigitFound, SeveralDigits

THRESHOLDS = RejectThresholds(no_digit_below=0.3, uncertain_below=0.8)


def _row(**probabilities: float) -> np.ndarray:
    row = np.zeros(10)
    for digit, value in probabilities.items():
        row[int(digit[1:])] = value
    rest = (1.0 - row.sum()) / max(1, (row == 0).sum())
    return np.where(row == 0, rest, row)


def test_a_confident_answer_is_not_flagged() -> None:
    judgement = judge(_row(d7=0.97), THRESHOLDS)
    assert (judgement.uncertain, judgement.reason) == (False, None)


def test_an_answer_between_two_digits_is_flagged_naming_both() -> None:
    judgement = judge(_row(d4=0.55, d9=0.4), THRESHOLDS)
    assert judgement.uncertain
    assert judgement.reason == "could be a 4 or a 9"


def test_an_answer_unlike_any_digit_is_flagged_saying_so() -> None:
    judgement = judge(_row(d2=0.5), THRESHOLDS)
    assert judgement.uncertain
    assert judgement.reason == "does not look much like any digit"


def test_probability_spread_over_the_digits_is_no_digit() -> None:
    with pytest.raises(NoDigitFound, match="does not look like a digit") as caught:
        judge(np.full(10, 0.1), THRESHOLDS)
    assert caught.value.status == 422
    assert "0.10" in str(caught.value) and "0.30" in str(caught.value)


def test_a_version_without_thresholds_answers_everything_unflagged() -> None:
    assert judge(np.full(10, 0.1), None).uncertain is False


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({"reject": {"no_digit_below": 0.2, "uncertain_below": 0.7}}, RejectThresholds(0.2, 0.7)),
        ({}, None),
        (None, None),
        ({"reject": "yes"}, None),
        ({"reject": {"no_digit_below": 0.2}}, None),
        ({"reject": {"no_digit_below": "x", "uncertain_below": 0.7}}, None),
        ({"reject": {"no_digit_below": 0.8, "uncertain_below": 0.7}}, None),
        ({"reject": {"no_digit_below": -1, "uncertain_below": 0.7}}, None),
    ],
)
def test_thresholds_are_read_from_the_metadata_only_when_sound(metadata, expected) -> None:  # type: ignore[no-untyped-def]
    assert RejectThresholds.from_metadata(metadata) == expected


@pytest.mark.parametrize("thresholds", [THRESHOLDS, None])
def test_a_picture_that_may_hold_several_digits_is_flagged_pointing_to_number(
    thresholds: RejectThresholds | None,
) -> None:
    judgement = judge(_row(d7=0.97), thresholds, possible_digits=2)
    assert judgement.uncertain
    assert judgement.reason == MAYBE_A_NUMBER and "/number" in judgement.reason


def test_both_doubts_are_told() -> None:
    judgement = judge(_row(d4=0.55, d9=0.4), THRESHOLDS, possible_digits=2)
    assert judgement.reason == f"{MAYBE_A_NUMBER}; could be a 4 or a 9"


def test_no_one_digit_in_what_may_be_several_is_several_digits() -> None:
    with pytest.raises(SeveralDigits, match=r"may hold 3 digits.*POST /number") as caught:
        judge(np.full(10, 0.1), THRESHOLDS, possible_digits=3)
    assert (caught.value.status, caught.value.code) == (422, "several_digits")
