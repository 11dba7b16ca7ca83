"""A job that fails, in a real browser against a real worker that lacks the data sets: an admin
reads why (the exception the API gives administrators only), anyone else the public reason, and
the charts say the job failed instead of waiting for an epoch that will never come."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import (
    DESKTOP,
    LiveService,
    PageErrors,
    enter_admin_token,
    open_panel,
    running_service,
    screenshot,
)
from tests.browser.test_training_panel import start_job

pytestmark = [pytest.mark.browser, pytest.mark.slow]

FAILURE_TIMEOUT_MS = 180_000


@pytest.fixture(scope="module")
def service_without_data(
    tmp_path_factory: pytest.TempPathFactory, bundled_models: Path
) -> Iterator[LiveService]:
    """The service and its worker with no data set anywhere and downloads off: every job
    fails, as on a machine where DATA_DIR was never set."""
    root = tmp_path_factory.mktemp("web-service-without-data")
    with running_service(
        root, bundled_models, DATA_DIR="", PERCEPTRON_DOWNLOAD_DATA="false"
    ) as service:
        yield service


@pytest.fixture
def page_without_data(browser: Browser, service_without_data: LiveService) -> Iterator[Page]:
    context = browser.new_context(base_url=service_without_data.url, viewport=DESKTOP)
    context.set_default_timeout(30_000)
    page = context.new_page()
    errors = PageErrors(page)
    yield page
    context.close()
    assert not errors.messages, errors.messages


def test_an_admin_sees_why_a_job_failed_and_others_the_public_reason(
    page_without_data: Page, browser: Browser, service_without_data: LiveService
) -> None:
    page = page_without_data
    open_panel(page, "training")
    enter_admin_token(page)
    job = start_job(page, "mpg", {"epochs": "5"})

    box = page.locator("#job-box")
    expect(box).to_have_attribute("data-status", "failed", timeout=FAILURE_TIMEOUT_MS)
    expect(page.locator("#job-outcome")).to_contain_text(
        "Failed: the worker could not read the data sets"
    )
    detail = page.locator("#job-error-detail-text")
    expect(page.locator("#job-error-detail")).to_be_visible()
    expect(detail).to_contain_text("DataError: auto-mpg.data not found (looked in ")
    expect(detail).to_contain_text("point DATA_DIR")
    for chart in ("#job-loss-chart", "#job-metric-chart"):
        expect(page.locator(f"{chart} text.empty")).to_have_text(
            "the job failed before its first epoch"
        )
    row = page.locator(f"#jobs-body tr[data-job^='{job}']")
    expect(row).to_have_attribute("data-status", "failed")
    expect(row.locator(".error-detail-text")).to_contain_text("point DATA_DIR")
    screenshot(page, "failed-job")

    # Without the token the page keeps to what the API tells anyone.
    context = browser.new_context(base_url=service_without_data.url, viewport=DESKTOP)
    try:
        other = context.new_page()
        open_panel(other, "training")
        other_row = other.locator(f"#jobs-body tr[data-job^='{job}']")
        expect(other_row).to_have_attribute("data-status", "failed")
        expect(other_row.locator(".error-detail-text")).to_have_count(0)
        other_row.get_by_role("button", name=f"Show job {job}").click()
        expect(other.locator("#job-outcome")).to_contain_text(
            "Failed: the worker could not read the data sets"
        )
        expect(other.locator("#job-error-detail")).to_be_hidden()
    finally:
        context.close()
