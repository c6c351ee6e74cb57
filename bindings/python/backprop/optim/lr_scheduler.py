"""Learning-rate schedules named as in torch.optim.lr_scheduler (over bp_optimizer_set_schedule).

    optimizer = backprop.optim.SGD(model, lr=0.1)
    scheduler = StepLR(optimizer, step_size=10, gamma=0.5)
    for epoch in range(epochs):
        ...                      # train one epoch
        scheduler.step()         # ReduceLROnPlateau: scheduler.step(val_loss)

A schedule lives in the optimizer: creating one attaches it (replacing any earlier one), with
the optimizer's base rate (its ``lr`` when made, or as last set) as the starting point, and sets
the rate for epoch 0. ``model.fit(optimizer=optimizer)`` steps it once per epoch by itself, with
the monitored loss (the validation loss, or the training loss without validation): do not call
step() then. Schedules are not saved in checkpoints; attach them again after loading.

Supported: StepLR, ExponentialLR, CosineAnnealingLR, LinearLR (a warm-up to the base rate),
ReduceLROnPlateau (mode "min", relative threshold), and a LinearLR warm-up followed by one of
the others through SequentialLR([LinearLR(...), other], milestones=[warm-up epochs]).
"""

from __future__ import annotations

import ctypes
import math
from typing import Any, List, Optional, Sequence

from .. import _capi
from .._capi import ScheduleRule, lib
from ..errors import check

__all__ = ["LRScheduler", "StepLR", "ExponentialLR", "CosineAnnealingLR", "LinearLR",
           "ReduceLROnPlateau", "SequentialLR"]


def _options(rule: ScheduleRule, **fields: Any) -> Any:
    options = _capi.bp_schedule_options()
    check(lib.bp_schedule_options_default(rule, ctypes.byref(options)))
    for name, value in fields.items():
        setattr(options, name, value)
    return options


def _epochs(value: Any, what: str, minimum: int = 1) -> int:
    value = int(value)
    if value < minimum:
        raise ValueError(f"{what} must be at least {minimum}, got {value}")
    return value


class LRScheduler:
    """Base of the schedules: attaches its options to the optimizer and steps them."""

    def __init__(self, optimizer: Any, options: Any) -> None:
        from . import Optimizer

        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        self._options = options
        self.base_lrs: List[float] = [optimizer._base_lr]
        self.last_epoch = 0
        self._last_lr = optimizer._attach_schedule(options)

    def step(self) -> None:
        """Ends an epoch: advances the schedule and sets the optimizer's new rate."""
        self._last_lr = self.optimizer._schedule_step(math.nan)
        self.last_epoch += 1

    def get_last_lr(self) -> List[float]:
        """[the optimizer's current learning rate] (one parameter group)."""
        return [self.optimizer.lr]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} lr={self.get_last_lr()[0]!r}>"


class StepLR(LRScheduler):
    """lr = base * gamma ** (epoch // step_size), as torch's StepLR."""

    def __init__(self, optimizer: Any, step_size: int, gamma: float = 0.1) -> None:
        super().__init__(optimizer, _options(ScheduleRule.STEP,
                                             step_size=_epochs(step_size, "step_size"),
                                             gamma=float(gamma)))


class ExponentialLR(LRScheduler):
    """lr = base * gamma ** epoch, as torch's ExponentialLR."""

    def __init__(self, optimizer: Any, gamma: float) -> None:
        super().__init__(optimizer, _options(ScheduleRule.EXPONENTIAL, gamma=float(gamma)))


class CosineAnnealingLR(LRScheduler):
    """Half a cosine from the base rate down to eta_min over T_max epochs, as torch's
    CosineAnnealingLR; after T_max epochs the rate stays at eta_min (torch would rise again)."""

    def __init__(self, optimizer: Any, T_max: int, eta_min: float = 0.0) -> None:
        super().__init__(optimizer, _options(ScheduleRule.COSINE,
                                             period=_epochs(T_max, "T_max"),
                                             min_lr=float(eta_min)))


class LinearLR(LRScheduler):
    """A linear warm-up from start_factor * base to the base rate over total_iters epochs, as
    torch's LinearLR with end_factor=1 (the only end factor supported); the base rate after."""

    def __init__(self, optimizer: Any, start_factor: float = 1.0 / 3,
                 end_factor: float = 1.0, total_iters: int = 5) -> None:
        if float(end_factor) != 1.0:
            raise ValueError("LinearLR: only end_factor=1.0 is supported (a warm-up to the base "
                             "rate)")
        self.start_factor = float(start_factor)
        self.total_iters = _epochs(total_iters, "total_iters")
        super().__init__(optimizer, _options(ScheduleRule.CONSTANT,
                                             warmup_epochs=self.total_iters,
                                             warmup_start_factor=self.start_factor))


class ReduceLROnPlateau(LRScheduler):
    """Multiplies the rate by `factor` after `patience` epochs without a relative improvement
    of `threshold` in the metric, then waits `cooldown` epochs; never below min_lr. As torch's
    ReduceLROnPlateau in mode "min" with threshold_mode "rel" (the only ones supported).
    ``step(metric)`` takes the metric (the validation loss, say)."""

    def __init__(self, optimizer: Any, mode: str = "min", factor: float = 0.1,
                 patience: int = 10, threshold: float = 1e-4, threshold_mode: str = "rel",
                 cooldown: int = 0, min_lr: float = 0.0, eps: float = 1e-8) -> None:
        if mode != "min":
            raise ValueError("ReduceLROnPlateau: only mode='min' is supported (pass the "
                             "negated metric to maximize)")
        if threshold_mode != "rel":
            raise ValueError("ReduceLROnPlateau: only threshold_mode='rel' is supported")
        super().__init__(optimizer, _options(
            ScheduleRule.REDUCE_ON_PLATEAU, factor=float(factor),
            patience=_epochs(patience, "patience", 0), threshold=float(threshold),
            cooldown=_epochs(cooldown, "cooldown", 0), min_lr=float(min_lr)))

    def step(self, metrics: Optional[float] = None) -> None:  # type: ignore[override]
        """Ends an epoch with the metric to minimize (None counts as no measurement)."""
        self._last_lr = self.optimizer._schedule_step(
            math.nan if metrics is None else float(metrics))
        self.last_epoch += 1


class SequentialLR(LRScheduler):
    """A LinearLR warm-up followed by another schedule, as torch's SequentialLR with
    schedulers=[LinearLR(...), other] and milestones=[the warm-up's total_iters] (the one form
    supported). Builds one schedule of the library from the two."""

    def __init__(self, optimizer: Any, schedulers: Sequence[LRScheduler],
                 milestones: Sequence[int]) -> None:
        if len(schedulers) != 2 or not isinstance(schedulers[0], LinearLR) \
                or isinstance(schedulers[1], (LinearLR, SequentialLR)):
            raise ValueError("SequentialLR: give [LinearLR(...), one other scheduler]")
        warmup, after = schedulers
        if list(milestones) != [warmup.total_iters]:
            raise ValueError(f"SequentialLR: milestones must be [{warmup.total_iters}], the "
                             f"warm-up's total_iters")
        if warmup.optimizer is not optimizer or after.optimizer is not optimizer:
            raise ValueError("SequentialLR: the schedulers must belong to this optimizer")
        options = after._options
        options.warmup_epochs = warmup.total_iters
        options.warmup_start_factor = warmup.start_factor
        self._after = after
        super().__init__(optimizer, options)

    def step(self, metrics: Optional[float] = None) -> None:  # type: ignore[override]
        """Ends an epoch (with the metric, when the second schedule is ReduceLROnPlateau)."""
        self._last_lr = self.optimizer._schedule_step(
            math.nan if metrics is None else float(metrics))
        self.last_epoch += 1
