"""The admin actions the soak test performs while traffic runs: a training job, a new version
folder copied in, and a pin. Each is logged with when it happened, what the service answered
and how long it took until the service served what it should."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

JOB_AT, COPY_AT, PIN_AT = 0.10, 0.30, 0.60
"""When each action starts, as a fraction of the measured run."""
SWAP_TIMEOUT_S = 120.0
FINAL_STATUSES = ("succeeded", "failed", "cancelled")


def admin_client(base_url: str, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=60.0
    )


async def served_version(admin: httpx.AsyncClient, name: str) -> int | None:
    """The version `name` serves now (None while it serves none, or if the API cannot say)."""
    response = await admin.get(f"/models/{name}")
    if response.status_code != 200:
        return None
    version: int | None = response.json()["served_version"]
    return version


def copy_version(models: Path, name: str, source: int, target: int) -> None:
    """Copies version `source` to `target` the way a deployment should: into a hidden folder
    beside it, then renamed into place, so the service never sees half a version."""
    from training.versions import TEMP_PREFIX

    temporary = models / name / f"{TEMP_PREFIX}bench-{uuid.uuid4().hex}"
    shutil.copytree(models / name / str(source), temporary)
    metadata_path = temporary / "metadata.json"
    metadata = json.loads(metadata_path.read_text())
    metadata.update(version=target, command=f"copied from version {source} by bench soak")
    metadata_path.write_text(json.dumps(metadata, indent=2))
    temporary.rename(models / name / str(target))


class Events:
    def __init__(
        self, admin: httpx.AsyncClient, models: Path, duration_s: float, *, job_epochs: int
    ) -> None:
        self.admin = admin
        self.models = models
        self.duration_s = duration_s
        self.job_epochs = job_epochs
        self.job_id: str | None = None
        self.job: dict[str, Any] | None = None
        self.log: list[dict[str, Any]] = []
        self._began = 0.0

    def _elapsed(self) -> float:
        return round(time.monotonic() - self._began, 1)

    async def _at(self, fraction: float) -> None:
        await asyncio.sleep(max(0.0, self._began + fraction * self.duration_s - time.monotonic()))

    async def _until_served(self, name: str, version: int) -> float | None:
        """Seconds until `name` serves `version`, or None if it did not within the timeout."""
        began = time.monotonic()
        while time.monotonic() - began < SWAP_TIMEOUT_S:
            if await served_version(self.admin, name) == version:
                return round(time.monotonic() - began, 1)
            await asyncio.sleep(0.5)
        return None

    async def run(self) -> None:
        """Performs the three actions on schedule; returns once each has settled."""
        self._began = time.monotonic()
        await self._at(JOB_AT)
        job_task = asyncio.create_task(self._training_job())
        await self._at(COPY_AT)
        at = self._elapsed()
        await asyncio.to_thread(copy_version, self.models, "digit", 1, 2)
        self.log.append(
            {"at_s": at, "action": "copy digit version 2 into the models folder",
             "answer": "-", "swap": True, "served_after_s": await self._until_served("digit", 2)}
        )  # fmt: skip
        await self._at(PIN_AT)
        at = self._elapsed()
        response = await self.admin.put("/models/digit/served-version", json={"version": 1})
        self.log.append(
            {"at_s": at, "action": "PUT /models/digit/served-version {version: 1}",
             "answer": response.status_code, "swap": True,
             "served_after_s": await self._until_served("digit", 1)}
        )  # fmt: skip
        await job_task

    async def _training_job(self) -> None:
        at = self._elapsed()
        body = {
            "model": "mpg",
            "hyperparameters": {"epochs": self.job_epochs, "ensemble_size": 1},
            "promote": "always",
        }
        response = await self.admin.post("/jobs", json=body)
        entry: dict[str, Any] = {
            "at_s": at, "action": f"POST /jobs (mpg, {self.job_epochs} epochs, promote=always)",
            "answer": response.status_code, "served_after_s": None,
        }  # fmt: skip
        self.log.append(entry)
        if response.status_code != 202:
            entry["detail"] = response.text[:300]
            return
        self.job_id = response.json()["id"]
        while True:
            job = (await self.admin.get(f"/jobs/{self.job_id}")).json()
            if job["status"] in FINAL_STATUSES:
                break
            await asyncio.sleep(1.0)
        self.job = {
            k: job.get(k) for k in ("id", "status", "version", "metrics", "error", "promotion")
        }
        entry["detail"] = f"{job['status']} at {self._elapsed()} s, version {job.get('version')}"
        if job["status"] == "succeeded" and job.get("version"):
            entry["swap"] = True
            entry["served_after_s"] = await self._until_served("mpg", job["version"])
