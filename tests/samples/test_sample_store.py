"""The sample store on both job databases (SQLite and a real PostgreSQL): the table comes from
the migrations, and filters, pages, reviews, retention, the quota and the export behave the
same; only the image reads read images."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import event

from service.database.engine import WAL_SIZE_LIMIT
from service.errors import InsufficientStorage
from service.jobs.store import JobStore
from service.samples.store import SampleQuota, SampleSource, SampleStatus, SampleStore

ROOMY = SampleQuota(max_samples=1000, max_bytes=2**30)


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


def add(store: SampleStore, label: int, value: int = 255, quota: SampleQuota = ROOMY):
    return store.add(
        label=label,
        predicted=None,
        model_version=None,
        source=SampleSource.canvas,
        image_png=png(value),
        original=png(value),
        original_type="image/png",
        quota=quota,
    )


def add_original(store: SampleStore, original: bytes, quota: SampleQuota, label: int = 7) -> None:
    """Adds an uploaded sample whose original is `original`."""
    store.add(
        label=label,
        predicted=None,
        model_version=None,
        source=SampleSource.upload,
        image_png=png(255),
        original=original,
        original_type="image/png",
        quota=quota,
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


def test_the_quota_counts_samples_and_bytes(samples: SampleStore) -> None:
    one = len(png(255)) * 2
    by_count = SampleQuota(max_samples=2, max_bytes=2**30)
    add(samples, 1, quota=by_count)
    add(samples, 2, quota=by_count)
    with pytest.raises(InsufficientStorage) as full:
        add(samples, 3, quota=by_count)
    assert full.value.status == 507 and "PERCEPTRON_FEEDBACK_MAX_SAMPLES" in full.value.message
    assert samples.usage() == (2, 2 * one)
    # With SQLite the log takes its share at rest; the rest is for three samples' images.
    by_bytes = SampleQuota(max_samples=1000, max_bytes=samples.log_allowance + 3 * one)
    add(samples, 4, quota=by_bytes)
    with pytest.raises(InsufficientStorage, match="PERCEPTRON_FEEDBACK_MAX_BYTES"):
        add(samples, 5, quota=by_bytes)
    # Deleting makes room again.
    samples.delete(samples.page(status=None, label=None, limit=1, offset=0)[0][0].id)
    add(samples, 5, quota=by_bytes)
    assert samples.usage()[0] == 3


def test_listing_and_reviewing_read_no_image(samples: SampleStore) -> None:
    rows = [add(samples, label) for label in range(5)]
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(samples.engine, "before_cursor_execute", record)
    try:
        page, total = samples.page(status=None, label=None, limit=500, offset=0)
        assert total == 5 and len(page) == 5
        assert samples.get(rows[0].id) is not None
        samples.review(rows[1].id, status=SampleStatus.rejected, label=None)
        reads = list(statements)
        assert samples.original(rows[2].id) == (png(255), "image/png")
        assert samples.image(rows[2].id) == png(255)
    finally:
        event.remove(samples.engine, "before_cursor_execute", record)
    images = re.compile(r"samples\.(original|image_png)\b(?!_)")
    assert reads and not [sql for sql in reads if images.search(sql)]
    assert any(images.search(sql) for sql in statements[len(reads) :])


def test_a_burst_of_large_originals_leaves_sqlites_log_no_larger_than_its_limit(
    tmp_path: Path,
) -> None:
    database = tmp_path / "jobs.sqlite3"
    jobs = JobStore(f"sqlite:///{database}")
    store = SampleStore(jobs.engine)
    noise = np.random.default_rng(0).integers(0, 256, (1024, 1024), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="PNG")  # about 1 MiB that does not compress
    original = buffer.getvalue()

    def add_upload(label: int) -> None:
        add_original(store, original, ROOMY, label)

    # A reader in the middle of a listing keeps SQLite from checkpointing past its snapshot,
    # so the burst piles up in the log, as it does under a flood of feedback.
    with jobs.engine.connect() as reader:
        reader.exec_driver_sql("BEGIN")
        reader.exec_driver_sql("SELECT count(*) FROM samples").scalar()
        for label in range(30):
            add_upload(label % 10)
        reader.exec_driver_sql("COMMIT")
    for label in range(3):  # the next writes checkpoint the log and start it again
        add_upload(label)
    wal = database.with_name(database.name + "-wal")
    assert database.stat().st_size > 30 * len(original)  # the originals are in the database
    assert wal.stat().st_size <= WAL_SIZE_LIMIT
    jobs.close()


def test_a_log_grown_past_its_limit_counts_toward_the_quota(tmp_path: Path) -> None:
    database = tmp_path / "jobs.sqlite3"
    jobs = JobStore(f"sqlite:///{database}")
    store = SampleStore(jobs.engine)
    original = np.random.default_rng(1).bytes(2**20)  # stored as given: 1 MiB of log a write
    quota = SampleQuota(max_samples=1000, max_bytes=WAL_SIZE_LIMIT + 40 * 2**20)

    def add_upload() -> None:
        add_original(store, original, quota)

    assert store.log_allowance == WAL_SIZE_LIMIT
    wal = database.with_name(database.name + "-wal")
    with jobs.engine.connect() as reader:  # holds its snapshot: no checkpoint can pass it
        reader.exec_driver_sql("BEGIN")
        reader.exec_driver_sql("SELECT count(*) FROM samples").scalar()
        with pytest.raises(InsufficientStorage, match="MiB of database log") as full:
            for _ in range(40):
                add_upload()
        reader.exec_driver_sql("COMMIT")
    count, images = store.usage()
    # The log outgrew its 16 MiB while the reader held it, and what it took beyond that was
    # refused to the images: images and log together stayed within the quota.
    assert wal.stat().st_size > WAL_SIZE_LIMIT
    assert images + wal.stat().st_size <= quota.max_bytes
    assert count < 40 and full.value.status == 507
    jobs.close()
