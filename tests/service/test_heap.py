"""The registry keeps what it loads out of the garbage collector's full passes (each would walk
half a million objects and stall every request), and hands a retired version back to the
collector, so hot reloads do not leak."""

from __future__ import annotations

import gc
import weakref

from tests.service.test_registry import add_version, served, wait_for


def _frozen(obj: object) -> bool:
    """Whether `obj` sits in the permanent generation: gc.get_objects lists the three
    collected generations only."""
    return gc.is_tracked(obj) and not any(other is obj for other in gc.get_objects())


def test_the_served_versions_are_frozen_once_loaded(client) -> None:
    slots = client.app.state.registry.slots
    for name in ("digit", "mpg"):
        assert _frozen(slots[name].serving.saved_model)


def test_a_retired_version_is_collected_and_its_successor_frozen(client, models_dir) -> None:
    slots = client.app.state.registry.slots
    retired = weakref.ref(slots["mpg"].serving.saved_model)
    add_version(models_dir, "mpg", 2)
    wait_for(lambda: served(client, "mpg") == 2)
    wait_for(lambda: retired() is None)
    assert _frozen(slots["mpg"].serving.saved_model)
