"""The reject option's thresholds: when the service answers "no digit found" or flags an answer
as uncertain, read from the digit model's highest probability.

A model with a not-a-digit gate (`training.not_digit_gate`) or trained with negatives
(`training.negatives`) spreads its probability over the ten digits when it sees no digit, and
keeps it on one digit for a digit it knows. Each version gets
two thresholds on its highest probability, chosen on the validation split's digits alone so
that a known share of real digits crosses them: below `no_digit_below` the service refuses
(422 no_digit_found), below `uncertain_below` it answers with `uncertain: true`. They are
written to the version's metadata (`reject`), so clients of the tensor endpoints can apply the
same rule to the probabilities they receive.
"""

from __future__ import annotations

from typing import Any

import numpy as np

METHOD = "max_probability"
REFUSED_SHARE = 0.0005
"""Share of the validation digits that may be refused: 3 of 6,000. Refusing a real digit is
the worse error (the person gets no answer), so this is kept at the tail's edge."""
FLAGGED_SHARE = 0.0035
"""Share of the validation digits that may be refused or flagged together: 21 of 6,000. The
thresholds are chosen on the digits as MNIST holds them; through the service's preprocessing,
which costs some confidence, a not-a-digit gate on digit/1's classifier doubted 0.32-0.45% of
them (two gate seeds), under the half a percent that MNIST's test set may lose."""


def thresholds(
    digit_probabilities: np.ndarray, uploaded_probabilities: np.ndarray | None = None
) -> tuple[float, float]:
    """(no_digit_below, uncertain_below) for a model whose probabilities on the validation
    digits are `digit_probabilities` (N x 10): the FLAGGED_SHARE quantile of the highest
    probability, and its REFUSED_SHARE quantile on `uploaded_probabilities` (the same digits
    through the upload augmentation) when given, else on the digits themselves.

    Photos and scans are harder than MNIST's own digits, so a refusal threshold set on those
    alone refuses real uploads that the classifier reads right; set on the digits as uploads
    leave them, it refuses only pictures the model finds as unlike a digit as those. The flag
    threshold stays on the digits MNIST holds: that is the share the test set may lose."""
    top = np.sort(digit_probabilities.max(axis=1))
    flag = float(top[int(FLAGGED_SHARE * len(top))])
    hardest = top if uploaded_probabilities is None else np.sort(uploaded_probabilities.max(axis=1))
    refuse = min(float(hardest[int(REFUSED_SHARE * len(hardest))]), flag)
    return round(refuse, 6), round(flag, 6)


def outcome_shares(
    probabilities: np.ndarray, no_digit_below: float, uncertain_below: float
) -> dict[str, float]:
    """Shares of pictures refused, flagged and answered under the thresholds."""
    top = probabilities.max(axis=1) if len(probabilities) else np.zeros(0)
    refused = top < no_digit_below
    flagged = ~refused & (top < uncertain_below)
    count = max(len(top), 1)
    return {
        "refused": round(float(refused.sum()) / count, 6),
        "flagged": round(float(flagged.sum()) / count, 6),
        "answered": round(float((~refused & ~flagged).sum()) / count, 6),
    }


def reject_metadata(
    digit_probabilities: np.ndarray,
    negative_probabilities: np.ndarray,
    negatives_trained: int,
    uploaded_probabilities: np.ndarray | None = None,
) -> dict[str, Any]:
    """The `reject` block of a digit version's metadata: the method, its thresholds, how they
    were chosen and what they do to the validation digits and negatives."""
    no_digit_below, uncertain_below = thresholds(digit_probabilities, uploaded_probabilities)
    refused_on = "" if uploaded_probabilities is None else " through the upload augmentation"
    block: dict[str, Any] = {
        "method": METHOD,
        "no_digit_below": no_digit_below,
        "uncertain_below": uncertain_below,
        "chosen_on": (
            f"the validation split's {len(digit_probabilities)} digits: at most "
            f"{REFUSED_SHARE:.2%} of them{refused_on} refused, and {FLAGGED_SHARE:.2%} of them "
            "refused or flagged"
        ),
        "negatives_trained": negatives_trained,
        "validation_digits": outcome_shares(digit_probabilities, no_digit_below, uncertain_below),
        "validation_negatives": outcome_shares(
            negative_probabilities, no_digit_below, uncertain_below
        ),
    }
    if uploaded_probabilities is not None:
        block["validation_digits_as_uploads"] = outcome_shares(
            uploaded_probabilities, no_digit_below, uncertain_below
        )
    return block
