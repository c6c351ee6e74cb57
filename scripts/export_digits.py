#!/usr/bin/env python3
"""Exports scikit-learn's handwritten digits to examples/data/digits.csv.

The data ships inside the scikit-learn package (sklearn/datasets/data/digits.csv.gz), so this
downloads nothing. It is run once, to make the committed CSV, and kept so that anyone can make
the file again and compare:

    python3 -m pip install scikit-learn
    python3 scripts/export_digits.py            # writes examples/data/digits.csv
    python3 scripts/export_digits.py --check    # exits 1 if the committed file differs

The CSV has a header line (pixel_0 .. pixel_63, label) and 1797 rows: 64 pixel intensities, whole
numbers in 0..16 (an 8x8 image, row by row), then the digit 0..9 as the last column. The tests
read it with bp_dataset_load_csv and need no scikit-learn. See examples/data/README.md for the
source and license.
"""

import argparse
import io
import sys
from pathlib import Path

OUTPUT = Path(__file__).resolve().parent.parent / "examples" / "data" / "digits.csv"


def digits_csv():
    from sklearn.datasets import load_digits

    digits = load_digits()
    images, labels = digits.data, digits.target
    assert images.shape == (1797, 64) and labels.shape == (1797,)
    assert images.min() >= 0 and images.max() <= 16 and (images == images.round()).all()
    out = io.StringIO()
    out.write(",".join([f"pixel_{i}" for i in range(64)] + ["label"]) + "\n")
    for row, label in zip(images, labels):
        out.write(",".join(str(int(v)) for v in row) + f",{int(label)}\n")
    return out.getvalue()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="compare with the committed file instead of writing it")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    text = digits_csv()
    if args.check:
        same = args.output.is_file() and args.output.read_text() == text
        print(f"{args.output}: {'matches' if same else 'differs from'} scikit-learn's digits")
        return 0 if same else 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(f"wrote {args.output} ({text.count(chr(10)) - 1} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
