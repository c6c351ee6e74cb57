"""circuit.py: the smallest use of the graph API, from Python.

Builds f(x, y, z) = (x + y) * z for x = -2, y = 5, z = -4, runs it forward, backpropagates from f
and prints the value and the three partial derivatives, as examples/circuit.c does:

    f = -12
    df/dx = -4      (z)
    df/dy = -4      (z)
    df/dz = 3       (x + y)

Run from the repository root, after `make lib`:
    PYTHONPATH=bindings/python python3 bindings/python/examples/circuit.py
"""

import sys

import backprop


def main():
    with backprop.Graph("float32") as graph:
        # The leaves: scalar inputs (shape ()), each given its value.
        x = graph.input(())
        y = graph.input(())
        z = graph.input(())
        graph.set_value(x, -2.0)
        graph.set_value(y, 5.0)
        graph.set_value(z, -4.0)

        # The ops. Python's operators add nodes to the graph; nothing is computed yet.
        q = x + y
        f = q * z

        # Forward computes every node; backward from the scalar f fills in the gradients.
        graph.forward()
        f.backward()

        # Values and gradients come back as numpy arrays of the node's shape: here, 0-d arrays.
        results = {"f": f.value, "df/dx": x.grad, "df/dy": y.grad, "df/dz": z.grad}

    for name, number in results.items():
        print(f"{name} = {float(number):g}")

    expected = {"f": -12.0, "df/dx": -4.0, "df/dy": -4.0, "df/dz": 3.0}
    if any(abs(float(results[name]) - want) > 1e-6 * (1 + abs(want))
           for name, want in expected.items()):
        print("wrong result: expected f = -12, df/dx = -4, df/dy = -4, df/dz = 3", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
