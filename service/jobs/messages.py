"""What travels through the job queue: a job's id, as JSON, and nothing else.

Huey's default serializer is pickle, and unpickling runs code: anyone able to write to the
queue (a Redis reachable by mistake) could run anything in every worker. This serializer
writes `{"task_id": ..., "job_id": ...}` and reads back only that shape; anything else is
refused before any part of it is used. The worker reads the job itself (model,
hyperparameters, promotion policy) from the job database, and runs it only if it is queued
there, so a forged message can at most start a job an administrator already created.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from huey.registry import Message
from huey.serializer import Serializer

log = logging.getLogger(__name__)

JOB_ID = re.compile(r"[0-9a-f]{32}")
"""A job id as `JobStore.create` makes it (uuid4 hex)."""
TASK_ID = re.compile(r"[0-9a-f-]{1,64}")
"""Huey's task id (a uuid4 string)."""
FIELDS = {"task_id", "job_id"}


class RefusedMessage(ValueError):
    """A queue message that is not a job message. Huey logs it and drops it unexecuted."""


class JobMessageSerializer(Serializer):  # type: ignore[misc]
    """Huey's serializer for a queue that carries one task, whose one argument is a job id.
    Results, schedules and revocations are not used and are refused too."""

    def __init__(self) -> None:
        super().__init__()
        self.task = ""
        """Huey's name for the task, set by `build_queue` once the task is registered."""

    def serialize(self, data: Any) -> bytes:
        if not isinstance(data, Message) or data.name != self.task:
            raise TypeError(f"the job queue carries only {self.task} messages, not {data!r}")
        if data.kwargs or len(data.args) != 1 or not JOB_ID.fullmatch(str(data.args[0])):
            raise TypeError(f"a job message carries one job id, not {data.args!r}")
        return json.dumps({"task_id": data.id, "job_id": data.args[0]}).encode()

    def deserialize(self, data: bytes) -> Message:
        try:
            fields = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            fields = None
        if not _is_job_message(fields):
            log.warning(
                "refused a job queue message that is not JSON of a job id (%d bytes); "
                "something other than the API writes to the queue",
                len(data),
            )
            raise RefusedMessage("not a job message; dropped without reading it further")
        return Message(fields["task_id"], self.task, args=(fields["job_id"],), kwargs={})


def _is_job_message(fields: Any) -> bool:
    return (
        isinstance(fields, dict)
        and set(fields) == FIELDS
        and all(isinstance(value, str) for value in fields.values())
        and JOB_ID.fullmatch(fields["job_id"]) is not None
        and TASK_ID.fullmatch(fields["task_id"]) is not None
    )
