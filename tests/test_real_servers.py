"""The real-server fixtures fail, never skip, when a server cannot be had."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.real_servers import INSTALL_HINT, _binary, wait_until


def test_a_missing_binary_fails_the_test_and_says_what_to_install() -> None:
    with pytest.raises(pytest.fail.Exception, match="make server-deps"):
        _binary(Path("/nonexistent/postgresql/bin/initdb"))
    assert "apt-get install redis-server postgresql" in INSTALL_HINT


def test_a_server_that_never_answers_fails_at_the_deadline() -> None:
    with pytest.raises(pytest.fail.Exception, match=r"timed out after 0\.2 s waiting for redis"):
        wait_until(lambda: False, 0.2, "redis")
