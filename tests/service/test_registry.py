"""The live registry: new versions are picked up without a restart and without failed requests;
broken, half-copied or held-back versions never serve; pins win."""

from __future__ import annotations

import json
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.service.test_bad_input import GOOD_CAR


def add_version(models_dir: Path, name: str, version: int, **metadata: object) -> Path:
    """Copies version 1 as `version` (same weights), atomically as a trainer would."""
    source = models_dir / name / "1"
    temp = models_dir / name / f".tmp-copy-{version}"
    shutil.copytree(source, temp)
    meta = json.loads((temp / "metadata.json").read_text())
    meta.update({"version": version, **metadata})
    (temp / "metadata.json").write_text(json.dumps(meta))
    temp.rename(models_dir / name / str(version))
    return models_dir / name / str(version)


def wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def served(client, name: str) -> int | None:
    return client.get(f"/models/{name}").json()["served_version"]


def rescan(client, name: str) -> None:
    """One scan of `name` by the registry, as its poller does (no waiting for the poller)."""
    client.portal.call(client.app.state.registry.refresh, name)


def failed_loads(client, name: str) -> list[str]:
    """The versions of `name` whose load failed, from the load counter in /metrics."""
    return [
        line
        for line in client.get("/metrics").text.splitlines()
        if line.startswith("perceptron_model_loads_total")
        and f'model="{name}"' in line
        and 'outcome="failed"' in line
        and not line.endswith(" 0.0")
    ]


def version_state(client, name: str, version: int) -> dict:
    """The version's entry in /models/{name}; empty until the registry has scanned it."""
    versions = client.get(f"/models/{name}").json()["versions"]
    return next((v for v in versions if v["version"] == version), {"state": None})


def test_a_new_version_is_served_without_restart_or_failed_requests(client, models_dir) -> None:
    assert served(client, "mpg") == 1
    stop = threading.Event()
    seen: list[tuple[int, int]] = []

    def hammer() -> None:
        while not stop.is_set():
            response = client.post("/mpg", json=GOOD_CAR)
            seen.append((response.status_code, response.json().get("model_version", -1)))

    with ThreadPoolExecutor(max_workers=6) as pool:
        for _ in range(6):
            pool.submit(hammer)
        wait_for(lambda: len(seen) >= 20)  # the load is on before the new version arrives
        add_version(models_dir, "mpg", 2)
        wait_for(lambda: served(client, "mpg") == 2)
        wait_for(lambda: sum(version == 2 for _, version in list(seen)) >= 20)
        stop.set()
    statuses = {status for status, _ in seen}
    versions = {version for _, version in seen}
    assert statuses == {200}, f"failed requests during the swap: {statuses}"
    assert versions == {1, 2}
    assert client.post("/mpg", json=GOOD_CAR).json()["model_version"] == 2


def test_a_broken_version_is_skipped_and_reported(client, models_dir) -> None:
    broken = models_dir / "digit" / "2"
    broken.mkdir()
    (broken / "saved_model.pb").write_bytes(b"this is not a protobuf")
    wait_for(lambda: version_state(client, "digit", 2)["state"] == "failed")
    state = version_state(client, "digit", 2)
    assert state["error"]
    assert served(client, "digit") == 1
    assert client.get("/readyz").status_code == 200


def test_a_version_missing_its_variables_is_skipped(client, models_dir) -> None:
    path = add_version(models_dir, "mpg", 2)
    shutil.rmtree(path / "variables")
    # The registry may have loaded version 2 in the instant before the variables went;
    # a third, broken from the start, must never serve.
    path3 = models_dir / "mpg" / ".tmp-3"
    shutil.copytree(path, path3)
    path3.rename(models_dir / "mpg" / "3")
    wait_for(lambda: version_state(client, "mpg", 3)["state"] == "failed")
    assert served(client, "mpg") in (1, 2)
    assert client.post("/mpg", json=GOOD_CAR).status_code == 200


def test_a_half_copied_version_waits_until_it_is_complete(client, models_dir) -> None:
    source = models_dir / "digit" / "1"
    target = models_dir / "digit" / "2"
    target.mkdir()
    shutil.copy2(source / "saved_model.pb", target / "saved_model.pb")  # the copy is under way
    # The copy stalls: scans see the same files again and again, so the folder has settled;
    # it must still not be loaded (the load would fail and be reported).
    for _ in range(3):
        rescan(client, "digit")
    assert version_state(client, "digit", 2)["state"] == "on_disk"
    assert served(client, "digit") == 1
    shutil.copytree(source / "variables", target / "variables")
    shutil.copy2(source / "metadata.json", target / "metadata.json")
    wait_for(lambda: served(client, "digit") == 2)
    assert failed_loads(client, "digit") == []
    assert client.get("/readyz").status_code == 200


def test_a_version_held_back_by_its_trainer_is_not_served(client, models_dir) -> None:
    add_version(models_dir, "mpg", 2, promotion={"promoted": False, "reason": "promote=never"})
    wait_for(lambda: version_state(client, "mpg", 2)["state"] == "on_disk", timeout=5)
    for _ in range(2):  # settled: a promoted version would be loaded by now
        rescan(client, "mpg")
    assert served(client, "mpg") == 1


def test_each_version_says_whether_it_is_promoted_and_what_unpin_would_serve(
    client, models_dir
) -> None:
    reason = "test mae 2.1000 is worse than version 1's 1.9000"
    add_version(models_dir, "mpg", 2, promotion={"promoted": False, "reason": reason})
    wait_for(lambda: version_state(client, "mpg", 2)["state"] == "on_disk", timeout=5)
    body = client.get("/models/mpg").json()
    by_version = {v["version"]: v for v in body["versions"]}
    assert by_version[2]["promoted"] is False and by_version[2]["promotion_reason"] == reason
    assert by_version[1]["promoted"] is True and by_version[1]["promotion_reason"]
    assert body["pinned_version"] is None and body["unpinned_version"] == 1

    pinned = client.put("/models/mpg/served-version", json={"version": 2}).json()
    assert pinned["served_version"] == 2 and pinned["pinned_version"] == 2
    assert pinned["pinned_by"] == "api"
    # the newest version on disk is 2, but it was held back: unpinning serves 1
    assert pinned["unpinned_version"] == 1
    unpinned = client.delete("/models/mpg/served-version").json()
    assert unpinned["served_version"] == 1 and unpinned["pinned_version"] is None
    assert unpinned["pinned_by"] is None


def test_a_settings_pin_serves_an_older_version(
    client_factory, settings_factory, models_dir
) -> None:
    add_version(models_dir, "mpg", 2)
    pinned = client_factory(settings_factory(models_dir=models_dir, pinned_versions={"mpg": 1}))
    assert served(pinned, "mpg") == 1
    body = pinned.get("/models/mpg").json()
    assert body["pinned_version"] == 1
    assert body["pinned_by"] == "settings"
    assert body["unpinned_version"] == 1  # removing an API pin does not lift the settings' pin


def test_pinning_through_the_api(client, models_dir) -> None:
    add_version(models_dir, "mpg", 2)
    wait_for(lambda: served(client, "mpg") == 2)
    response = client.put("/models/mpg/served-version", json={"version": 1})
    assert response.status_code == 200, response.text
    assert response.json()["served_version"] == 1 and response.json()["pinned_version"] == 1
    add_version(models_dir, "mpg", 3)
    for _ in range(2):  # settled: without the pin, version 3 would be served by now
        rescan(client, "mpg")
    assert version_state(client, "mpg", 3)["state"] == "on_disk"
    assert served(client, "mpg") == 1  # the pin holds against newer versions
    response = client.delete("/models/mpg/served-version")
    assert response.status_code == 200
    wait_for(lambda: served(client, "mpg") == 3)


def test_pinning_a_missing_or_broken_version_is_refused(client, models_dir) -> None:
    missing = client.put("/models/mpg/served-version", json={"version": 42})
    assert missing.status_code == 404 and "no version 42" in missing.json()["error"]
    broken = models_dir / "mpg" / "2"
    shutil.copytree(models_dir / "mpg" / "1", models_dir / "mpg" / ".tmp-b")
    (models_dir / "mpg" / ".tmp-b" / "saved_model.pb").write_bytes(b"junk")
    (models_dir / "mpg" / ".tmp-b").rename(broken)
    # hold it back so the policy does not try it on its own
    meta = json.loads((broken / "metadata.json").read_text())
    meta["promotion"] = {"promoted": False}
    (broken / "metadata.json").write_text(json.dumps(meta))
    response = client.put("/models/mpg/served-version", json={"version": 2})
    assert response.status_code == 409, response.text
    assert "cannot be served" in response.json()["error"]
    body = client.get("/models/mpg").json()
    assert body["served_version"] == 1 and body["pinned_version"] is None


@pytest.mark.parametrize("body", [{"version": 0}, {"version": "one"}, {}, {"version": 1, "x": 1}])
def test_pin_body_is_validated(client, body) -> None:
    assert client.put("/models/mpg/served-version", json=body).status_code == 422


def test_no_models_means_not_ready(client_factory, settings_factory, tmp_path) -> None:
    empty = client_factory(settings_factory(models_dir=tmp_path / "nothing"))
    ready = empty.get("/readyz")
    assert ready.status_code == 503 and "digit is unavailable" in ready.json()["error"]
    assert empty.post("/mpg", json=GOOD_CAR).status_code == 503
    assert empty.get("/healthz").status_code == 200
