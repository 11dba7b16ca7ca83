"""The body of every error response."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: str
    code: str
    request_id: str | None = None
    details: list[dict[str, Any]] | None = None
