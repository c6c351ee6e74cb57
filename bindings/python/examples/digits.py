"""Handwritten digits: a small network that reaches at least 97% accuracy in a few seconds.

Reads examples/data/digits.csv (1797 images of 8x8 pixels with values 0-16, the digit 0-9 in
the last column) with backprop.data.load_csv, and holds out a fixed test set that needs no
random numbers, the same as examples/digits.c:

    test  = rows whose index % 4 == 3     25% of the data (449 images)
    train = the other 1348

Pixels are standardized with the training images' mean and spread. The network is
Linear(64, 256) -> ReLU -> Dropout(0.2) -> Linear(256, 10), trained for 60 epochs with Adam
and cross-entropy by model.fit. Prints the test accuracy and exits with status 1 below 97%.

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
    """Train and test row indices: every fourth row (index % 4 == 3) is held out, 25% of the
    data, the same rows examples/digits.c holds out."""
    index = np.arange(rows)
    held_out = index % 4 == 3
    return index[~held_out], index[held_out]


def main():
    started = time.perf_counter()
    x, y = data.load_csv(DATA)
    train, test = split(len(x))
    # Constant pixels (the borders) keep a spread of 1: they only lose their mean.
    mean, spread = x[train].mean(axis=0), x[train].std(axis=0)
    x = ((x - mean) / np.where(spread > 0, spread, 1)).astype(np.float32)

    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Dropout(0.2), nn.Linear(256, 10),
                          seed=42)
    history = model.fit(x[train], y[train], epochs=60, batch_size=32,
                        optimizer=optim.Adam(model, lr=1e-3), progress=False)
    loss, accuracy = model.evaluate(x[test], y[test])
    elapsed = time.perf_counter() - started

    print(f"digits: {len(train)} training images, {len(test)} test images")
    print(f"trained {history.epochs_run} epochs in {elapsed:.1f} s")
    print(f"test loss {loss:.4f}, test accuracy {accuracy:.2%}")
    if accuracy < REQUIRED_ACCURACY:
        print(f"FAILED: accuracy below {REQUIRED_ACCURACY:.0%}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
