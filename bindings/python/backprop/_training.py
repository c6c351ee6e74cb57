"""What fit() reports: the per-epoch logs, the History, the callbacks and the progress bar."""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, Iterator, List, Sequence, Union, overload

__all__ = ["History", "StopTraining", "Callback", "epoch_logs", "ProgressBar", "run_callbacks"]


class StopTraining(Exception):
    """Raise it in a fit() callback to end training after this epoch, quietly: fit() returns
    the History as usual, with ``stopped_by_callback`` set."""


#: A fit() callback: a callable taking the epoch's log dict, or an object with a Keras-style
#: ``on_epoch_end(epoch, logs)`` method.
Callback = Union[Callable[[Dict[str, Any]], Any], Any]


def epoch_logs(report: Any, validation: bool) -> Dict[str, Any]:
    """The log dict of one bp_epoch_report (copied: the report is valid during the callback
    only)."""
    count = report.layer_count
    logs: Dict[str, Any] = {
        "epoch": int(report.epoch),
        "loss": float(report.train_loss),
        "accuracy": float(report.train_accuracy),
    }
    if validation:
        logs["val_loss"] = float(report.validation_loss)
        logs["val_accuracy"] = float(report.validation_accuracy)
    logs["lr"] = float(report.learning_rate)
    logs["grad_norms"] = [float(report.gradient_norms[i]) for i in range(count)]
    logs["update_ratios"] = [float(report.update_ratios[i]) for i in range(count)]
    logs["vanishing"] = bool(report.vanishing)
    logs["exploding"] = bool(report.exploding)
    return logs


def run_callbacks(callbacks: Sequence[Callback], logs: Dict[str, Any]) -> bool:
    """Calls each callback with the epoch's logs; True when one raised StopTraining."""
    for callback in callbacks:
        try:
            method = getattr(callback, "on_epoch_end", None)
            if method is not None:
                method(logs["epoch"], logs)
            else:
                callback(logs)
        except StopTraining:
            return True
    return False


class ProgressBar:
    """A tqdm bar over the epochs when tqdm is installed and `enabled`; silent otherwise."""

    def __init__(self, epochs: int, enabled: bool) -> None:
        self._bar: Any = None
        if not enabled:
            return
        try:
            from tqdm import tqdm
        except ImportError:
            return
        self._bar = tqdm(total=epochs, unit="epoch", leave=True, dynamic_ncols=True)

    def update(self, logs: Dict[str, Any]) -> None:
        if self._bar is None:
            return
        shown = {key: f"{logs[key]:.4g}" for key in ("loss", "accuracy", "val_loss",
                                                     "val_accuracy") if key in logs}
        self._bar.set_postfix(shown, refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class History(Sequence[Dict[str, Any]]):
    """What fit() returns: one log dict per epoch, in order, and how training ended.

    Each dict has "epoch" (1-based), "loss" and "accuracy" (training, averaged over the epoch),
    "val_loss" and "val_accuracy" (only with validation data), "lr" (the rate used in the
    epoch), "grad_norms" and "update_ratios" (one per layer with parameters, on the epoch's last
    step), and "vanishing" / "exploding" (some gradient norm beyond its threshold).

    ``history[i]`` is epoch i+1's dict; ``history["loss"]`` the list of one key over the epochs
    (Keras' ``history.history["loss"]`` works too).
    """

    def __init__(self) -> None:
        self.epochs: List[Dict[str, Any]] = []
        self.epochs_run = 0
        self.best_epoch = 0
        self.best_loss = math.nan
        self.stopped_early = False
        self.stopped_by_callback = False
        self.final_loss = math.nan
        self.final_val_loss = math.nan

    def _finish(self, result: Any) -> None:
        self.epochs_run = int(result.epochs_run)
        self.best_epoch = int(result.best_epoch)
        self.best_loss = float(result.best_loss)
        self.stopped_early = bool(result.stopped_early)
        self.stopped_by_callback = bool(result.stopped_by_callback)
        self.final_loss = float(result.final_train_loss)
        self.final_val_loss = float(result.final_validation_loss)

    @property
    def history(self) -> Dict[str, List[Any]]:
        """Every key's values over the epochs (Keras' History.history)."""
        keys: List[str] = []
        for logs in self.epochs:
            keys.extend(k for k in logs if k not in keys)
        return {key: [logs.get(key) for logs in self.epochs] for key in keys}

    @overload
    def __getitem__(self, index: int) -> Dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Dict[str, Any]]: ...

    @overload
    def __getitem__(self, index: str) -> List[Any]: ...

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, str):
            if self.epochs and index not in self.epochs[0]:
                raise KeyError(index)
            return [logs.get(index) for logs in self.epochs]
        return self.epochs[index]

    def __len__(self) -> int:
        return len(self.epochs)

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        return iter(self.epochs)

    def __repr__(self) -> str:
        how = ("stopped early" if self.stopped_early else
               "stopped by a callback" if self.stopped_by_callback else "ran all epochs")
        last = self.epochs[-1] if self.epochs else {}
        scores = ", ".join(f"{k} {last[k]:.4g}" for k in ("loss", "accuracy", "val_loss",
                                                          "val_accuracy") if k in last)
        return f"<History {len(self.epochs)} epochs, {how}; last epoch: {scores}>"

    def __getstate__(self) -> Dict[str, Any]:
        return dict(self.__dict__)

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state)

