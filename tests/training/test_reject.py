"""training.reject: the reject option's thresholds, chosen on the validation digits alone."""

from __future__ import annotations

import numpy as np
import pytest

from training import reject


def _probabilities(tops: list[float]) -> np.ndarray:
    rows = []
    for top in tops:
        row = np.full(10, (1.0 - top) / 9)
        row[3] = top
        rows.append(row)
    return np.array(rows)


def test_the_thresholds_refuse_and_flag_the_chosen_shares_of_validation_digits() -> None:
    tops = np.linspace(0.2, 1.0, 10_000).tolist()
    refuse, flag = reject.thresholds(_probabilities(tops))
    shares = reject.outcome_shares(_probabilities(tops), refuse, flag)
    assert shares["refused"] == pytest.approx(reject.REFUSED_SHARE, abs=2e-4)
    assert shares["refused"] + shares["flagged"] == pytest.approx(reject.FLAGGED_SHARE, abs=2e-4)
    assert refuse < flag
    assert shares["answered"] == pytest.approx(1 - reject.FLAGGED_SHARE, abs=2e-4)


def test_the_metadata_block_says_how_the_thresholds_were_chosen() -> None:
    digits = _probabilities([0.99] * 5990 + [0.5] * 10)
    spread = _probabilities([0.12] * 90 + [0.999] * 10)
    block = reject.reject_metadata(digits, spread, negatives_trained=800)
    assert block["method"] == "max_probability"
    assert 0 <= block["no_digit_below"] <= block["uncertain_below"] <= 1
    assert "6000 digits" in block["chosen_on"]
    assert block["negatives_trained"] == 800
    assert block["validation_negatives"]["refused"] == pytest.approx(0.9)
    assert block["validation_negatives"]["answered"] == pytest.approx(0.1)


def test_no_pictures_give_zero_shares() -> None:
    assert reject.outcome_shares(np.zeros((0, 10)), 0.3, 0.6) == {
        "refused": 0.0,
        "flagged": 0.0,
        "answered": 0.0,
    }


def test_refusals_are_chosen_on_the_digits_as_uploads_leave_them() -> None:
    """The digits through the upload augmentation are harder: their REFUSED_SHARE quantile is
    lower, so a photo that the classifier reads with little confidence is flagged, not
    refused; the flag threshold stays on the digits themselves."""
    digits = _probabilities(np.linspace(0.3, 1.0, 10_000).tolist())
    as_uploads = _probabilities(np.linspace(0.11, 1.0, 10_000).tolist())
    refuse, flag = reject.thresholds(digits, as_uploads)
    assert refuse == pytest.approx(0.11 + 0.89 * reject.REFUSED_SHARE, abs=1e-3)
    assert flag == reject.thresholds(digits)[1]
    block = reject.reject_metadata(digits, digits[:10], 0, as_uploads)
    assert "through the upload augmentation" in block["chosen_on"]
    assert block["validation_digits_as_uploads"]["refused"] == pytest.approx(
        reject.REFUSED_SHARE, abs=2e-4
    )


def test_the_refusal_threshold_never_exceeds_the_flag_threshold() -> None:
    digits = _probabilities(np.linspace(0.3, 1.0, 10_000).tolist())
    easier = _probabilities([0.99] * 10_000)
    refuse, flag = reject.thresholds(digits, easier)
    assert refuse == flag
