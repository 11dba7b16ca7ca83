"""The Training panel in a real browser against the real worker: a tiny job followed live to its
end through the events stream, a cancelled job, and the new version rolled out and back in
the Models panel."""

from __future__ import annotations

import re

import numpy as np
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import ADMIN_TOKEN, enter_admin_token, open_panel, screenshot
from tests.drawings import mnist_png

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.data]

JOB_TIMEOUT_MS = 300_000
LOAD_TIMEOUT_MS = 60_000
"""Serving another version loads it first: 3.4 s for the bundled mpg ensemble with the machine
at load 10, over the 5 s of an `expect` at load 20 and more."""
EPOCHS = 20


def start_job(page: Page, model: str, fields: dict[str, str], promote: str = "never") -> str:
    """Fills the training form and starts the job; returns its short id as the page shows it."""
    page.click("#tab-training")
    page.select_option("#training-model", model)
    for name, value in fields.items():
        page.fill(f"#hp-{name}", value)
    page.select_option("#training-promote", promote)
    page.click("#training-start")
    expect(page.locator("#job-box")).to_be_visible()
    title = page.locator("#job-title").text_content() or ""
    match = re.search(r"Job (\w+)", title)
    assert match, title
    return match.group(1)


@pytest.mark.usefixtures("data_paths")  # the job reads the data sets: skipped without them
def test_a_tiny_job_is_followed_to_the_end_and_its_version_can_be_served(page: Page) -> None:
    open_panel(page, "training")
    enter_admin_token(page)
    job = start_job(page, "mpg", {"epochs": str(EPOCHS), "ensemble_size": "2"})

    box = page.locator("#job-box")
    expect(box).to_have_attribute("data-status", "succeeded", timeout=JOB_TIMEOUT_MS)
    assert page.eval_on_selector("#job-progress", "bar => bar.value") == 1
    # members and epochs, never the epochs of both members added up
    expect(page.locator("#job-progress-text")).to_contain_text(
        f"100% · member 2/2 · epoch {EPOCHS}/{EPOCHS}"
    )
    # the curve beside the loss is the error in mpg, the unit of the test MAE
    expect(page.locator("#job-metric-chart")).to_have_attribute(
        "aria-label", re.compile(rf"^MAE \(mpg\) over 2 members, {2 * EPOCHS} epochs in all")
    )
    for chart in ("#job-loss-chart", "#job-metric-chart"):
        lines = page.locator(f"{chart} polyline[data-points]")
        assert lines.count() == 2  # training and validation
        assert lines.first.get_attribute("data-points") == str(2 * EPOCHS)
    outcome = page.locator("#job-outcome").text_content() or ""
    version_match = re.search(r"Version (\d+) exported", outcome)
    assert version_match, outcome
    version = int(version_match.group(1))
    assert "not served" in outcome  # promote=never
    row = page.locator(f"#jobs-body tr[data-job^='{job}']")
    expect(row).to_have_attribute("data-status", "succeeded")
    expect(row).to_contain_text(f"version {version}")
    screenshot(page, "training")

    # The new version is on disk, not served; serve it, then go back to the policy.
    page.click("#tab-models")
    card = page.locator("article[data-model=mpg]")
    served_before = card.get_attribute("data-served")
    expect(card.locator(f"tr[data-version='{version}']")).to_be_visible()
    card.get_by_role("button", name=f"Serve v{version}").click()
    # The answer comes once the version is loaded and warmed up: seconds on 2 busy cores.
    expect(card).to_have_attribute("data-served", str(version), timeout=LOAD_TIMEOUT_MS)
    expect(page.locator("#models-status")).to_contain_text(
        f"mpg now serves version {version} (pinned)"
    )
    screenshot(page, "models")
    card.get_by_role("button", name="Unpin").click()
    expect(card).to_have_attribute("data-served", served_before or "", timeout=LOAD_TIMEOUT_MS)
    expect(card.get_by_role("button", name="Unpin")).to_have_count(0)


@pytest.mark.usefixtures("data_paths")  # the job reads the data sets: skipped without them
def test_a_running_job_can_be_cancelled(page: Page) -> None:
    open_panel(page, "training")
    enter_admin_token(page)
    fields = {"epochs": "3000", "ensemble_size": "1", "early_stopping_patience": "0"}
    start_job(page, "mpg", fields)
    expect(page.locator("#job-progress-text")).to_contain_text("epoch", timeout=JOB_TIMEOUT_MS)
    page.click("#job-cancel")
    box = page.locator("#job-box")
    expect(box).to_have_attribute("data-status", "cancelled", timeout=JOB_TIMEOUT_MS)
    expect(page.locator("#job-outcome")).to_contain_text("Cancelled")
    expect(page.locator("#job-cancel")).to_be_disabled()


def _accepted_samples(page: Page, mnist, labels: tuple[int, ...]) -> list[str]:  # type: ignore[no-untyped-def]
    """Sends MNIST test digits of `labels` as feedback and accepts them; returns their ids."""
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    ids = []
    for label in labels:
        for row in np.flatnonzero(mnist.y_test == label)[:2]:
            png = mnist_png(mnist.x_test[row])
            sent = page.request.post(
                "/digit/feedback",
                multipart={
                    "file": {"name": "d.png", "mimeType": "image/png", "buffer": png},
                    "label": str(label),
                },
            )
            assert sent.status == 201, sent.text()
            sample_id = sent.json()["id"]
            accepted = page.request.patch(
                f"/samples/{sample_id}", data={"status": "accepted"}, headers=admin
            )
            assert accepted.status == 200, accepted.text()
            ids.append(sample_id)
    return ids


def test_a_job_on_accepted_samples_shows_both_accuracies(page: Page, mnist) -> None:  # type: ignore[no-untyped-def]
    ids = _accepted_samples(page, mnist, (3, 8))
    open_panel(page, "training")
    enter_admin_token(page)
    page.click("#tab-training")
    page.select_option("#training-model", "digit")
    # Fine-tuning has its own defaults, shown as the placeholders.
    page.select_option("#hp-start_from", "served")
    expect(page.locator("#hp-epochs")).to_have_attribute("placeholder", "default 1")
    page.select_option("#hp-start_from", "scratch")
    expect(page.locator("#hp-epochs")).to_have_attribute("placeholder", "default 10")
    page.select_option("#hp-architecture", "mlp")
    page.fill("#hp-epochs", "1")
    page.fill("#hp-max_train_samples", "500")
    page.select_option("#hp-user_samples", "accepted")
    page.select_option("#training-promote", "never")
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/jobs")) as sent:
        page.click("#training-start")
    hyperparameters = sent.value.post_data_json["hyperparameters"]
    assert hyperparameters["user_samples"] == "accepted"
    assert hyperparameters["start_from"] == "scratch"

    box = page.locator("#job-box")
    expect(box).to_have_attribute("data-status", "succeeded", timeout=JOB_TIMEOUT_MS)
    both = re.compile(
        r"MNIST test \d+\.\d\d% · user samples \d+\.\d\d% \(\d+ held out, \d+ trained on\)"
    )
    expect(page.locator("#job-outcome")).to_contain_text(both)
    expect(page.locator("#jobs-body tr[data-status=succeeded]").first).to_contain_text(both)
    screenshot(page, "training-user-samples")
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    for sample_id in ids:
        assert page.request.delete(f"/samples/{sample_id}", headers=admin).status == 204
