"""The sample store on both job databases (SQLite and a real PostgreSQL): the table comes from
the migrations, and filters, pages, reviews, retention and the export behave the same."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from service.jobs.store import JobStore
from service.samples.store import SampleSource, SampleStatus, SampleStore


def png(value: int) -> bytes:
    buffer = io.BytesIO()
    pixels = np.zeros((28, 28), dtype=np.uint8)
    pixels[4:24, 12:16] = value
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(params=["sqlite", "postgresql"])
def samples(request: pytest.FixtureRequest, tmp_path: Path):
    url = (
        f"sqlite:///{tmp_path / 'jobs.sqlite3'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    jobs = JobStore(url)  # opening the job database migrates it, the samples table included
    yield SampleStore(jobs.engine)
    jobs.close()


def add(store: SampleStore, label: int, value: int = 255):
    return store.add(
        label=label,
        predicted=None,
        model_version=None,
        source=SampleSource.canvas,
        image_png=png(value),
        original=png(value),
        original_type="image/png",
    )


def test_filters_pages_reviews_and_export(samples: SampleStore) -> None:
    rows = [add(samples, label, value) for label, value in ((1, 200), (7, 255), (7, 100))]
    assert samples.get(rows[0].id).created_at.tzinfo is not None
    page, total = samples.page(status=None, label=7, limit=1, offset=0)
    assert total == 2 and len(page) == 1
    samples.review(rows[1].id, status=SampleStatus.accepted, label=None)
    samples.review(rows[0].id, status=SampleStatus.accepted, label=4)
    counts = samples.counts()
    assert counts["accepted"] == {4: 1, 7: 1} and counts["new"] == {7: 1}
    x, y = samples.accepted_arrays()
    assert x.shape == (2, 28, 28) and x.dtype == np.uint8
    assert sorted(y.tolist()) == [4, 7]
    assert {int(image.max()) for image in x} == {200, 255}
    assert samples.delete(rows[2].id) and not samples.delete(rows[2].id)


def test_retention_keeps_accepted_samples_unless_told(samples: SampleStore) -> None:
    kept, dropped = add(samples, 3), add(samples, 5)
    samples.review(kept.id, status=SampleStatus.accepted, label=None)
    assert samples.purge(timedelta(days=1), keep_accepted=True) == 0
    assert samples.purge(timedelta(seconds=-1), keep_accepted=True) == 1
    assert samples.get(dropped.id) is None and samples.get(kept.id) is not None
    assert samples.purge(timedelta(seconds=-1), keep_accepted=False) == 1
