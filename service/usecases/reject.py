"""The reject option: whether the digit model's answer is a digit, an unsure digit, or no digit.

A digit version trained with negatives (`training.negatives`) records in its metadata two
thresholds on its highest probability (`reject`: `no_digit_below`, `uncertain_below`, chosen on
its validation split by `training.reject`). Below the first the picture holds no digit the
model knows (422 no_digit_found); below the second the answer stands but is flagged
`uncertain`, with a short reason. A version without them answers every picture the
preprocessing lets through, unflagged.

Clients of the tensor endpoints (TensorFlow Serving, Open Inference Protocol) receive the same
ten probabilities and apply the same rule with the thresholds of `GET /models/digit`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from service.vision import NoDigitFound, SeveralDigits

SECOND_CHOICE_SHARE = 0.25
"""An unsure answer names a second digit when it holds at least this share of the
probability: "a 4 or a 9" rather than "unsure"."""


@dataclass(frozen=True)
class RejectThresholds:
    no_digit_below: float
    uncertain_below: float

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any] | None) -> RejectThresholds | None:
        """The thresholds a version's metadata records, or None when it records none."""
        block = (metadata or {}).get("reject")
        if not isinstance(block, dict):
            return None
        try:
            refuse, flag = float(block["no_digit_below"]), float(block["uncertain_below"])
        except (KeyError, TypeError, ValueError):
            return None
        if not 0.0 <= refuse <= flag <= 1.0:
            return None
        return cls(refuse, flag)


@dataclass(frozen=True)
class Judgement:
    uncertain: bool
    reason: str | None


MAYBE_A_NUMBER = "may be several digits side by side: POST /number reads a number"


def judge(
    probabilities: np.ndarray, thresholds: RejectThresholds | None, *, possible_digits: int = 1
) -> Judgement:
    """Whether the answer with these ten `probabilities` is flagged, and why; raises
    NoDigitFound when they say the picture holds no digit. A picture that may hold several
    digits (`possible_digits`, from the preprocessing) is flagged whatever the model says (a
    row of digits read as one is the wrong question answered), and refused as SeveralDigits
    where the model reads no digit in it."""
    if possible_digits <= 1:
        return _judge_probabilities(probabilities, thresholds)
    try:
        judgement = _judge_probabilities(probabilities, thresholds)
    except NoDigitFound:
        raise SeveralDigits(
            f"the picture may hold {possible_digits} digits side by side, and reads as no one "
            "digit: send a number to POST /number to read it, or crop the picture to one digit"
        ) from None
    return Judgement(True, "; ".join(filter(None, (MAYBE_A_NUMBER, judgement.reason))))


def _judge_probabilities(
    probabilities: np.ndarray, thresholds: RejectThresholds | None
) -> Judgement:
    if thresholds is None:
        return Judgement(False, None)
    order = np.argsort(probabilities)[::-1]
    top = float(probabilities[order[0]])
    if top < thresholds.no_digit_below:
        raise NoDigitFound(
            "no digit found: this does not look like a digit (the model's highest probability, "
            f"{top:.2f} for {int(order[0])}, is below {thresholds.no_digit_below:.2f}); send a "
            "picture of one handwritten digit"
        )
    if top >= thresholds.uncertain_below:
        return Judgement(False, None)
    second = float(probabilities[order[1]])
    if second >= SECOND_CHOICE_SHARE * top:
        return Judgement(True, f"could be a {int(order[0])} or a {int(order[1])}")
    return Judgement(True, "does not look much like any digit")
