"""Training curves: train a digits classifier and plot loss and accuracy per epoch to a PNG.

Trains Linear(64, 64) -> Tanh -> Linear(64, 10) on examples/data/digits.csv for 40 epochs with
SGD (momentum 0.9) and a cosine learning-rate schedule. The rows are shuffled once (numpy's
default_rng(0), as digits.py does) and the last 20% held out for validation. It draws the
training and validation loss and accuracy of every epoch (from the History that model.fit
returns) with matplotlib's Agg backend. Needs matplotlib.

    PYTHONPATH=bindings/python python3 bindings/python/examples/plot_training.py [out.png]

The picture goes to the path given, or training.png in the current directory.
"""

import sys
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")  # files only: no display needed
import matplotlib.pyplot as plt  # noqa: E402

from backprop import data, nn, optim  # noqa: E402
from backprop.optim.lr_scheduler import CosineAnnealingLR  # noqa: E402

DATA = Path(__file__).resolve().parents[3] / "examples" / "data" / "digits.csv"
EPOCHS = 40


def train():
    x, y = data.load_csv(DATA)
    x /= 16.0
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    model = nn.Sequential(nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 10), seed=1)
    optimizer = optim.SGD(model, lr=0.05, momentum=0.9)
    CosineAnnealingLR(optimizer, T_max=EPOCHS, eta_min=0.005)
    return model.fit(x, y, epochs=EPOCHS, batch_size=64, validation_split=0.2,
                     optimizer=optimizer, progress=False)


def plot(history, path):
    epochs = history["epoch"]
    figure, (loss_axes, accuracy_axes) = plt.subplots(1, 2, figsize=(10, 4))
    loss_axes.plot(epochs, history["loss"], label="training")
    loss_axes.plot(epochs, history["val_loss"], label="validation")
    loss_axes.set(title="Cross-entropy loss", xlabel="epoch", ylabel="loss", yscale="log")
    accuracy_axes.plot(epochs, [100 * a for a in history["accuracy"]], label="training")
    accuracy_axes.plot(epochs, [100 * a for a in history["val_accuracy"]], label="validation")
    accuracy_axes.set(title="Accuracy", xlabel="epoch", ylabel="accuracy (%)")
    for axes in (loss_axes, accuracy_axes):
        axes.grid(alpha=0.3)
        axes.legend()
    figure.suptitle("Digits, 64-64-10 network, SGD with momentum and a cosine schedule")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv):
    path = Path(argv[1]) if len(argv) > 1 else Path("training.png")
    history = train()
    plot(history, path)
    last = history[-1]
    print(f"{len(history)} epochs: loss {last['loss']:.4f}, validation loss "
          f"{last['val_loss']:.4f}, validation accuracy {last['val_accuracy']:.2%}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
