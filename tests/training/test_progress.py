"""training.progress: progress and ETA per step and per epoch, on a clock the test controls.

A run of 3 epochs of 10 steps whose first step costs 20 s (graph tracing, compilation) and
every other step 1 s, with 2 s of validation per epoch: 60 s of steady work after the first
step, so the exact time left is known at every step.
"""

from __future__ import annotations

from typing import Any

import pytest

from training.progress import KerasProgress, RunClock

STEPS, EPOCHS, FIRST_STEP_S, STEP_S, VALIDATION_S = 10, 3, 20.0, 1.0, 2.0


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class Recorder:
    def __init__(self) -> None:
        self.steps: list[tuple[int, float, float | None]] = []
        self.epochs: list[tuple[int, float, float | None]] = []

    def started(self, *, device: str, total_epochs: int, stages: int = 1) -> None:
        pass

    def epoch_ended(self, record: dict[str, Any], *, progress: float, eta_s: float | None) -> None:
        self.epochs.append((record["epoch"], progress, eta_s))

    def batch_ended(
        self, step: int, steps: int | None, *, progress: float, eta_s: float | None
    ) -> None:
        self.steps.append((step, progress, eta_s))

    def finished(self) -> None:
        pass


def _run(epochs_run: int = EPOCHS, total: int = EPOCHS) -> tuple[Recorder, FakeClock, RunClock]:
    now = FakeClock()
    clock = RunClock(total, now=now)
    recorder = Recorder()
    callback = KerasProgress(recorder, stage="train", clock=clock)
    callback.set_params({"epochs": EPOCHS, "steps": STEPS})
    for epoch in range(epochs_run):
        for step in range(STEPS):
            now.t += FIRST_STEP_S if (epoch, step) == (0, 0) else STEP_S
            callback.on_train_batch_end(step, {"loss": 0.5})
        now.t += VALIDATION_S
        callback.on_epoch_end(epoch, {"loss": 0.5, "val_loss": 0.6})
    return recorder, now, clock


def test_progress_counts_every_step_of_the_run() -> None:
    recorder, _, _ = _run()
    assert [p for _, p, _ in recorder.steps] == pytest.approx(
        [(i + 1) / (STEPS * EPOCHS) for i in range(STEPS * EPOCHS)]
    )
    assert [p for _, p, _ in recorder.epochs] == pytest.approx([1 / 3, 2 / 3, 1.0])


def test_the_eta_leaves_out_the_first_steps_compilation() -> None:
    recorder, _, _ = _run()
    assert recorder.steps[0][2] is None  # no pace known after the first step alone
    # After epoch 1, 2 epochs of 10 steps and their validation are left: 24 s.
    # (Elapsed over progress would say 31 s / (1/3) * (2/3) = 62 s.)
    assert recorder.epochs[0][2] == pytest.approx(2 * (STEPS * STEP_S + VALIDATION_S), rel=0.05)
    # Halfway through epoch 2 the estimate is still within 10% of the truth.
    step, _, eta = recorder.steps[STEPS + 4]
    truth = (STEPS - 5) * STEP_S + VALIDATION_S + STEPS * STEP_S + VALIDATION_S
    assert step == 5 and eta == pytest.approx(truth, rel=0.1)
    assert recorder.epochs[-1][2] == 0


def test_epochs_skipped_by_early_stopping_count_as_done_but_take_no_time() -> None:
    # The first of two 3-epoch stages stops early after 2 epochs (fitting counts the third).
    _, _, clock = _run(epochs_run=2, total=2 * EPOCHS)
    clock.done_epochs += 1
    assert clock.progress() == pytest.approx(0.5)
    # Left: 3 epochs at the pace of the epochs trained (12 s each), not of those skipped.
    assert clock.eta_s() == pytest.approx(3 * (STEPS * STEP_S + VALIDATION_S), rel=0.1)
