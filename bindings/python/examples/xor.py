"""xor.py: train a small network to compute XOR, one explicit step at a time.

XOR is the classic problem a single layer cannot solve: the two classes are not linearly
separable. A hidden layer of 8 tanh units fixes that. The network is

    2 inputs -> dense 8, tanh -> dense 2 (logits) -> softmax cross-entropy against labels 0/1

and each epoch is the four steps of training on the whole four-sample batch:

    zero_grad -> forward -> backward -> update

(Network.train_step does the same in one call). The seed is fixed, so every run prints the same
numbers, the same as examples/xor.c. Exits 0 only if all four samples end up classified correctly.

Run from the repository root, after `make lib`:
    PYTHONPATH=bindings/python python3 bindings/python/examples/xor.py
"""

import sys

import numpy as np

import backprop

HIDDEN = 8
EPOCHS = 2000
REPORT_EVERY = 200
LEARNING_RATE = 0.5
SEED = 42

# The training set: the whole truth table, one row per sample, and the class of each row.
INPUTS = np.array([[0, 0],
                   [0, 1],
                   [1, 0],
                   [1, 1]], dtype=np.float32)
LABELS = np.array([0, 1, 1, 0], dtype=np.int32)


def softmax(logits):
    """Row-wise softmax, shifted by the row maximum so that exp cannot overflow."""
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def main():
    print(f"libbackprop {backprop.library_version()}: XOR with a 2-{HIDDEN}-2 network")

    # Build the network: layers are appended in order; the loss picks what backward expects.
    net = backprop.Network(input_width=2, seed=SEED, loss="cross_entropy")
    net.add_dense(HIDDEN, activation="tanh")
    net.add_dense(2, activation=None)  # logits: cross-entropy applies the softmax itself
    print(f"{net.parameter_count} parameters, learning rate {LEARNING_RATE:g}, "
          f"{EPOCHS} epochs\n")

    for epoch in range(1, EPOCHS + 1):
        net.zero_grad()                 # gradients accumulate until cleared
        net.forward(INPUTS)             # logits [4, 2]; keeps what backward needs
        loss = net.backward(LABELS)     # the batch-averaged loss; adds into the gradients
        net.update(LEARNING_RATE)       # w -= learning_rate * grad(w)
        if epoch == 1 or epoch % REPORT_EVERY == 0:
            print(f"epoch {epoch:4d}  loss {loss:.6f}")

    # Evaluate. predict is forward without keeping anything for a backward pass.
    logits = net.predict(INPUTS)
    predicted = logits.argmax(axis=1)
    probability_of_one = softmax(logits)[:, 1]

    print("\n  x1 x2  label  predicted  p(1)")
    for (x1, x2), label, guess, p in zip(INPUTS, LABELS, predicted, probability_of_one):
        print(f"  {x1:2g} {x2:2g}  {label:5d}  {guess:9d}  {p:.4f}")
    correct = int((predicted == LABELS).sum())
    print(f"\naccuracy: {correct}/{len(LABELS)} ({100 * correct / len(LABELS):.0f}%)")

    net.close()
    return 0 if correct == len(LABELS) else 1


if __name__ == "__main__":
    sys.exit(main())
