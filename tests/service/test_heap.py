"""The registry keeps what it loads out of the garbage collector's full passes (each would walk
half a million objects and stall every request), and hands a retired version back to the
collector, so hot reloads do not leak."""

from __future__ import annotations

import gc
import weakref

import pytest

from tests.service.test_registry import add_version, served, wait_for


def _frozen(obj: object) -> bool:
    """Whether `obj` sits in the permanent generation: gc.get_objects lists the three
    collected generations only."""
    return gc.is_tracked(obj) and not any(other is obj for other in gc.get_objects())


@pytest.fixture(params=["litert", "tensorflow"])
def runtime_client(request, client_factory, settings_factory, models_dir):  # type: ignore[no-untyped-def]
    """The app on the tiny models with each runtime: a LiteRT runner holds an interpreter, a
    TensorFlow one the SavedModel's half a million objects."""
    settings = settings_factory(models_dir=models_dir, model_runtime=request.param)
    return client_factory(settings)


def _kept(client, name: str) -> object:  # type: ignore[no-untyped-def]
    """What the served version of `name` keeps alive to compute: the SavedModel under
    TensorFlow, the runner under LiteRT."""
    runner = client.app.state.registry.slots[name].serving.runner
    return getattr(runner, "saved_model", runner)


def test_the_served_versions_are_frozen_once_loaded(runtime_client) -> None:  # type: ignore[no-untyped-def]
    for name in ("digit", "mpg"):
        assert _frozen(_kept(runtime_client, name))


def test_a_retired_version_is_collected_and_its_successor_frozen(
    runtime_client, models_dir
) -> None:  # type: ignore[no-untyped-def]
    retired = weakref.ref(_kept(runtime_client, "mpg"))
    add_version(models_dir, "mpg", 2)
    wait_for(lambda: served(runtime_client, "mpg") == 2)
    wait_for(lambda: retired() is None)
    assert _frozen(_kept(runtime_client, "mpg"))
