"""Handwritten digits: a small network that reaches at least 97% accuracy in a few seconds.

Reads examples/data/digits.csv (1797 images of 8x8 pixels with values 0-16, the digit 0-9 in
the last column) with backprop.data.load_csv, and holds out a fixed test set:

    order = numpy.random.default_rng(0).permutation(1797)
    test  = order[1797 - 1797 // 4:]      the last 25% of the permuted rows (449 images)
    train = order[:1797 - 1797 // 4]      the other 1348

Pixels are scaled to [0, 1]. The network is Linear(64, 128) -> ReLU -> Dropout(0.1) ->
Linear(128, 10), trained with Adam and cross-entropy by model.fit, with 10% of the training rows
held out for early stopping. Prints the test accuracy and exits with status 1 below 97%.

    PYTHONPATH=bindings/python python3 bindings/python/examples/digits.py
"""

import sys
import time
from pathlib import Path

import numpy as np

from backprop import data, nn, optim

DATA = Path(__file__).resolve().parents[3] / "examples" / "data" / "digits.csv"
REQUIRED_ACCURACY = 0.97


def split(rows):
    """Train and test row indices: the last 25% of a permutation from default_rng(0)."""
    order = np.random.default_rng(0).permutation(rows)
    cut = rows - rows // 4
    return order[:cut], order[cut:]


def main():
    started = time.perf_counter()
    x, y = data.load_csv(DATA)
    x /= 16.0
    train, test = split(len(x))

    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Dropout(0.1), nn.Linear(128, 10),
                          seed=0)
    history = model.fit(x[train], y[train], epochs=100, batch_size=32, validation_split=0.1,
                        patience=10, optimizer=optim.Adam(model, lr=2e-3), progress=False)
    loss, accuracy = model.evaluate(x[test], y[test])
    elapsed = time.perf_counter() - started

    print(f"digits: {len(train)} training images, {len(test)} test images")
    print(f"trained {history.epochs_run} epochs (best validation loss at epoch "
          f"{history.best_epoch}) in {elapsed:.1f} s")
    print(f"test loss {loss:.4f}, test accuracy {accuracy:.2%}")
    if accuracy < REQUIRED_ACCURACY:
        print(f"FAILED: accuracy below {REQUIRED_ACCURACY:.0%}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
