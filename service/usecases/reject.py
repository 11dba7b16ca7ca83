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

from service.vision import NoDigitFound

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


def judge(probabilities: np.ndarray, thresholds: RejectThresholds | None) -> Judgement:
    """Whether the answer with these ten `probabilities` is flagged, and why; raises
    NoDigitFound when they say the picture holds no digit."""
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
