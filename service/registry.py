"""The live model registry: which version of each model is served, and swapping it safely.

A poller scans `<models_dir>/<name>/` and asks `training.versions` which version the serving
policy wants (a pin, else the newest promoted version). A new version is loaded and warmed up
on a worker thread while the old one keeps serving; only then is the reference swapped, and
the old version's queue drains before it is dropped. A version that fails to load is recorded
with its error and skipped until its files change; the previous version keeps serving. A
version folder still being written (its files changed since the last scan) is left alone until
it settles.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from service.batching import AdaptiveBatcher, Tensors
from service.errors import Conflict, ModelUnavailable, NotFound
from service.metrics import ServiceMetrics
from service.runtimes import RUNTIMES
from service.runtimes.selection import Selection, select_runner
from service.settings import Settings
from training import versions
from training.hyperparameters import MODEL_NAMES
from training.signatures import SERVING_SIGNATURE_KEY, SIGNATURES, Signature

log = logging.getLogger(__name__)


class ModelState(StrEnum):
    loading = "loading"
    available = "available"
    failed = "failed"
    unavailable = "unavailable"
    """No version on disk."""


class VersionState(StrEnum):
    serving = "serving"
    loading = "loading"
    failed = "failed"
    on_disk = "on_disk"
    """Valid as far as anyone knows, not served."""


class LoadedVersion:
    """One loaded model version: its runner (LiteRT or the SavedModel's serving signature,
    `service.runtimes.selection`) behind an adaptive batcher."""

    def __init__(
        self,
        name: str,
        version: int,
        selection: Selection,
        metadata: dict[str, Any],
        batcher_factory: Callable[[LoadedVersion], AdaptiveBatcher],
    ) -> None:
        self.name = name
        self.version = version
        self.metadata = metadata
        self.signature: Signature = SIGNATURES[name]
        self.runner = selection.runner
        self.runtime = selection.runner.runtime
        self.runtime_fallback = selection.fallback
        """Why TensorFlow serves although LiteRT was asked for; None otherwise."""
        self.loaded_at = time.time()
        self.batcher = batcher_factory(self)

    def run(self, inputs: Tensors) -> Tensors:
        """One synchronous model call; thread-safe. Inputs and outputs are NumPy arrays."""
        return self.runner(inputs)

    async def infer(self, inputs: Tensors) -> Tensors:
        """Runs `inputs` through the batcher (off the event loop)."""
        return await self.batcher.submit(inputs)

    def zeros(self, rows: int) -> Tensors:
        return {
            spec.name: np.zeros([rows, *(d for d in spec.shape[1:] if d is not None)], np.float32)
            for spec in self.signature.inputs
        }


@dataclass(frozen=True)
class Problem:
    """Why a model or a version does not serve. `code` and `message` are stable and name no
    file and no exception, so anyone may read them; `detail` (the exception, the paths) is for
    the log and for administrators."""

    code: str
    message: str
    detail: str | None = None


@dataclass
class VersionRecord:
    version: int
    fingerprint: str
    metadata: dict[str, Any] | None
    state: VersionState = VersionState.on_disk
    error: Problem | None = None
    failed_fingerprint: str | None = None


@dataclass
class ModelSlot:
    name: str
    serving: LoadedVersion | None = None
    state: ModelState = ModelState.loading
    error: Problem | None = None
    versions: dict[int, VersionRecord] = field(default_factory=dict)
    pinned: int | None = None
    pinned_by: str | None = None
    """Where the pin in force comes from: "api" (pin.json) or "settings"."""
    unpinned: int | None = None
    """What the policy serves once the API's pin is removed (the settings' pin, else the newest
    promoted version that loads), whether or not a pin is in force now."""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def _freeze_heap() -> None:
    """Moves every object alive now, a loaded model's half a million among them, out of the
    garbage collector's sight. Otherwise each full collection walks them all (0.35 s here), and
    a burst of connections, whose objects survive into the oldest generation, triggers one:
    every request waits that long. One collection first (once, at start): a version served by
    LiteRT has let go of its SavedModel, whose reference cycles would otherwise be frozen for
    ever."""
    gc.collect()
    gc.freeze()


def _collect_retired() -> None:
    """Makes frozen objects collectable again, collects and freezes the rest, so that a retired
    version's reference cycles (a SavedModel is full of them) are freed rather than kept for
    ever."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


async def _retire(previous: LoadedVersion) -> None:
    await previous.batcher.close()
    del previous
    _collect_retired()


def _load_saved_model(path: Path) -> Any:
    import tensorflow as tf

    return tf.saved_model.load(str(path))


def _check_signature(name: str, loaded: Any) -> None:
    expected = SIGNATURES[name]
    signatures = getattr(loaded, "signatures", {})
    if SERVING_SIGNATURE_KEY not in signatures:
        raise ValueError(f"the SavedModel has no {SERVING_SIGNATURE_KEY!r} signature")
    function = signatures[SERVING_SIGNATURE_KEY]
    inputs = set(function.structured_input_signature[1])
    outputs = set(function.structured_outputs)
    if inputs != set(expected.input_names) or not set(expected.output_names) <= outputs:
        raise ValueError(
            f"signature mismatch: expected inputs {sorted(expected.input_names)} and outputs "
            f"{sorted(expected.output_names)}, found {sorted(inputs)} -> {sorted(outputs)}"
        )


INCOMPLETE_PATIENCE_SCANS = 10
"""Scans an incomplete version folder must stay unchanged before it is tried anyway."""


def looks_complete(path: Path) -> bool:
    """Whether a SavedModel folder holds what a loader reads: saved_model.pb, the variables
    index and every data shard its name promises (`variables.data-00000-of-00002`...). Every
    model served here has variables; a folder without them is a copy still under way."""
    variables = path / "variables"
    if not (path / "saved_model.pb").is_file() or not (variables / "variables.index").is_file():
        return False
    shards = list(variables.glob("variables.data-*-of-*"))
    if not shards:
        return False
    total = shards[0].name.rsplit("-of-", 1)[1]
    if not total.isdigit():
        return False
    return all(
        (variables / f"variables.data-{index:05d}-of-{total}").is_file()
        for index in range(int(total))
    )


def fingerprint(path: Path) -> str:
    """Changes whenever a file under `path` is added, removed, resized or rewritten."""
    digest = hashlib.sha1(usedforsecurity=False)
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for filename in sorted(files):
            full = Path(root) / filename
            with contextlib.suppress(OSError):
                stat = full.stat()
                digest.update(
                    f"{full.relative_to(path)}:{stat.st_size}:{stat.st_mtime_ns};".encode()
                )
    return digest.hexdigest()


class ModelRegistry:
    """Serves one version of each model in `training.hyperparameters.MODEL_NAMES`."""

    def __init__(self, settings: Settings, metrics: ServiceMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.models_dir = settings.models_dir
        self.slots = {name: ModelSlot(name) for name in MODEL_NAMES}
        self._poller: asyncio.Task[None] | None = None
        self._previous_fingerprints: dict[tuple[str, int], str] = {}
        self._unchanged_scans: dict[tuple[str, int], int] = {}
        self._retiring: set[asyncio.Task[None]] = set()

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Loads every model once (versions need not have settled), then starts polling."""
        for name in self.slots:
            await self.refresh(name, initial=True)
        _freeze_heap()
        self._poller = asyncio.create_task(self._poll(), name="model-poller")

    async def stop(self) -> None:
        if self._poller:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        for slot in self.slots.values():
            if slot.serving:
                await slot.serving.batcher.close()
            # Its batcher is closed: a later start() (the app's lifespan run again) loads anew.
            slot.serving, slot.state = None, ModelState.loading
        self._previous_fingerprints.clear()
        self._unchanged_scans.clear()
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)
        # Collectable again, but not collected now: a stopping server is about to exit, and a
        # full pass over everything a process has loaded costs 0.3 s or more. An app started
        # again in the same process (tests, embedders) leaves it to the collector's own passes.
        gc.unfreeze()

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.settings.poll_interval_s)
            for name in self.slots:
                try:
                    await self.refresh(name)
                except Exception:  # the poller must outlive any single bad scan
                    log.exception("scanning model %s failed", name)

    # -- queries ----------------------------------------------------------------------------

    def get(self, name: str, version: int | None = None) -> LoadedVersion:
        """The served version of `name` (or exactly `version`, which must be the served one)."""
        slot = self.slots.get(name)
        if slot is None:
            raise NotFound(f"unknown model {name!r}: the models are {', '.join(self.slots)}")
        serving = slot.serving
        if serving is None:
            reason = f": {slot.error.message}" if slot.error else ""
            raise ModelUnavailable(f"model {name} is {slot.state.value}{reason}")
        if version is not None and version != serving.version:
            raise NotFound(
                f"version {version} of model {name} is not loaded; version {serving.version} "
                "is served"
            )
        return serving

    def ready(self) -> bool:
        return all(slot.serving is not None for slot in self.slots.values())

    def waiting_for(self) -> str:
        """Why the service is not ready, in words anyone may read: each model that serves no
        version, its state and its problem's public message."""
        return "; ".join(
            f"{name} is {slot.state.value}" + (f" ({slot.error.message})" if slot.error else "")
            for name, slot in self.slots.items()
            if slot.serving is None
        )

    # -- changes ----------------------------------------------------------------------------

    async def set_pin(self, name: str, version: int | None) -> None:
        """Pins `version` (None removes the pin) and applies it now. A pin to a version that
        fails to load is taken back, and the failure raised."""
        slot = self.slots[name]
        if version is not None and version not in versions.list_versions(self.models_dir, name):
            raise NotFound(f"model {name} has no version {version} on disk")
        previous = versions.read_pin(self.models_dir, name)
        versions.write_pin(self.models_dir, name, version)
        await self.refresh(name, initial=True)
        if version is not None and (slot.serving is None or slot.serving.version != version):
            versions.write_pin(self.models_dir, name, previous)
            record = slot.versions.get(version)
            error = record.error if record else None
            await self.refresh(name, initial=True)
            # Only an administrator can ask for a pin: the answer may carry the details.
            reason = (error.detail or error.message) if error else "it could not be loaded"
            raise Conflict(f"version {version} of model {name} cannot be served: {reason}")

    async def refresh(self, name: str, *, initial: bool = False) -> None:
        """Rescans one model and serves the version the policy selects, if it loads."""
        slot = self.slots[name]
        async with slot.lock:
            self._scan(slot)
            settings_pin = self.settings.pinned_versions.get(name)
            api_pin = versions.read_pin(self.models_dir, name)
            slot.pinned = api_pin or settings_pin
            slot.pinned_by = "api" if api_pin else "settings" if settings_pin else None
            candidates = versions.serving_candidates(self.models_dir, name, settings_pin)
            current = slot.serving.version if slot.serving else None
            for version in candidates:
                if version == current:
                    break
                record = slot.versions.get(version)
                if record is None:
                    if slot.pinned == version:
                        slot.error = Problem(
                            "pinned_version_missing", f"pinned version {version} is not on disk"
                        )
                    continue
                if record.failed_fingerprint == record.fingerprint:
                    continue
                if not initial and not self._settled(name, record):
                    continue
                if await self._load_and_swap(slot, record):
                    break
            self._update_states(slot)
            slot.unpinned = self._unpinned_choice(slot, settings_pin)
            for record in slot.versions.values():
                key = (name, record.version)
                same = self._previous_fingerprints.get(key) == record.fingerprint
                self._unchanged_scans[key] = self._unchanged_scans.get(key, 0) + 1 if same else 0
                self._previous_fingerprints[key] = record.fingerprint

    def _unpinned_choice(self, slot: ModelSlot, settings_pin: int | None) -> int | None:
        for version in versions.serving_candidates(
            self.models_dir, slot.name, settings_pin, api_pin=False
        ):
            record = slot.versions.get(version)
            if record is not None and record.failed_fingerprint != record.fingerprint:
                return version
        return None

    def _scan(self, slot: ModelSlot) -> None:
        on_disk = versions.list_versions(self.models_dir, slot.name)
        known = slot.versions
        for version in list(known):
            if version not in on_disk:
                del known[version]
        for version in on_disk:
            path = versions.version_dir(self.models_dir, slot.name, version)
            current = fingerprint(path)
            record = known.get(version)
            if record is None or record.fingerprint != current:
                metadata = versions.read_metadata(path)
                if record is None:
                    known[version] = VersionRecord(version, current, metadata)
                else:
                    record.fingerprint, record.metadata = current, metadata

    def _settled(self, name: str, record: VersionRecord) -> bool:
        """Unchanged since the last scan and complete; or, lacking a file, unchanged for
        INCOMPLETE_PATIENCE_SCANS scans (a copy stalled that long is taken as all there is, and
        its load failure reported), so a copy that pauses records no failure."""
        key = (name, record.version)
        if self._previous_fingerprints.get(key) != record.fingerprint:
            return False
        path = versions.version_dir(self.models_dir, name, record.version)
        return (
            looks_complete(path)
            or self._unchanged_scans.get(key, 0) + 1 >= INCOMPLETE_PATIENCE_SCANS
        )

    async def _load_and_swap(self, slot: ModelSlot, record: VersionRecord) -> bool:
        path = versions.version_dir(self.models_dir, slot.name, record.version)
        record.state = VersionState.loading
        if slot.serving is None:
            slot.state = ModelState.loading
        started = time.perf_counter()
        try:
            loaded = await asyncio.to_thread(self._load_and_warm, slot.name, record, path)
        except Exception as exc:
            detail = f"{type(exc).__name__}: {exc}".strip()
            detail = detail.splitlines()[0][:500] if detail else type(exc).__name__
            record.state = VersionState.failed
            record.error = Problem(
                "load_failed", f"version {record.version} could not be loaded", detail
            )
            record.failed_fingerprint = record.fingerprint
            self.metrics.model_loads.labels(slot.name, str(record.version), "failed").inc()
            log.error(
                "version %d of %s failed to load: %s",
                record.version,
                slot.name,
                detail,
                extra={"model": slot.name, "version": record.version},
            )
            return False
        previous = slot.serving
        slot.serving = loaded
        slot.error = None
        record.error = None
        self.metrics.model_loads.labels(slot.name, str(record.version), "loaded").inc()
        self.metrics.served_version.labels(slot.name).set(record.version)
        for runtime in RUNTIMES:
            self.metrics.model_runtime.labels(slot.name, runtime).set(runtime == loaded.runtime)
        if loaded.runtime_fallback is not None:
            reason = loaded.runtime_fallback.code
            self.metrics.runtime_fallbacks.labels(slot.name, str(record.version), reason).inc()
        log.info(
            "serving %s version %d with %s (loaded in %.2fs)",
            slot.name,
            record.version,
            loaded.runtime,
            time.perf_counter() - started,
            extra={"model": slot.name, "version": record.version},
        )
        if previous is not None:
            task = asyncio.create_task(_retire(previous))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
        return True

    def _load_and_warm(self, name: str, record: VersionRecord, path: Path) -> LoadedVersion:
        loaded = _load_saved_model(path)
        _check_signature(name, loaded)
        metadata = record.metadata or {}
        selection = select_runner(name, record.version, path, loaded, metadata, self.settings)
        del loaded  # a LiteRT runner needs none of the SavedModel's objects
        version = LoadedVersion(name, record.version, selection, metadata, self._batcher)
        outputs = version.run(version.zeros(1))  # warm-up: traces and allocates before serving
        for spec in version.signature.outputs:
            if outputs[spec.name].shape[0] != 1:
                raise ValueError(f"output {spec.name} has shape {outputs[spec.name].shape}")
        return version

    def _batcher(self, loaded: LoadedVersion) -> AdaptiveBatcher:
        s = self.settings
        labels = (loaded.name, str(loaded.version))

        def on_batch(rows: int, seconds: float) -> None:
            self.metrics.inference_latency.labels(*labels).observe(seconds)
            self.metrics.batch_rows.labels(loaded.name).observe(rows)

        return AdaptiveBatcher(
            loaded.run,
            name=f"{loaded.name}-v{loaded.version}",
            max_batch=s.batch_max_size,
            max_wait_s=s.batch_max_wait_ms / 1000.0,
            queue_limit=s.batch_queue_limit,
            inline_max_s=s.inline_inference_ms / 1000.0,
            on_batch=on_batch,
            on_shed=self.metrics.shed_requests.labels(loaded.name).inc,
        )

    def _update_states(self, slot: ModelSlot) -> None:
        serving = slot.serving.version if slot.serving else None
        for record in slot.versions.values():
            if record.version == serving:
                record.state = VersionState.serving
            elif record.failed_fingerprint == record.fingerprint:
                record.state = VersionState.failed
            else:
                record.state = VersionState.on_disk
        if slot.serving is not None:
            slot.state = ModelState.available
        elif not slot.versions:
            slot.state = ModelState.unavailable
            slot.error = Problem(
                "no_versions",
                f"no version of {slot.name} is on disk",
                f"no versions under {self.models_dir / slot.name}",
            )
        else:
            slot.state = ModelState.failed
            failures = [r.error for r in slot.versions.values() if r.error]
            if failures and not slot.error:
                slot.error = Problem(
                    "no_version_loads", "no version could be loaded", failures[-1].detail
                )
            elif not failures and not slot.error:
                slot.error = Problem("no_eligible_version", "no version is eligible for serving")
