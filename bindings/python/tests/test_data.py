"""backprop.data.load_csv: CSV files read by the library's dataset functions into numpy arrays,
with the dataset handle freed exactly once whatever happens."""

import numpy as np
import pytest

import backprop
from backprop import data
from support import REPOSITORY

isolated = pytest.mark.isolated  # bad input for the library: a crash fails one test

DIGITS = REPOSITORY / "examples" / "data" / "digits.csv"


def test_digits_load_as_features_and_integer_labels():
    x, y = data.load_csv(DIGITS)
    assert x.shape == (1797, 64) and x.dtype == np.float32
    assert y.shape == (1797,) and y.dtype == np.int32
    assert x.min() == 0 and x.max() == 16
    assert sorted(np.unique(y)) == list(range(10))
    first = np.loadtxt(DIGITS, delimiter=",", skiprows=1, max_rows=3)
    np.testing.assert_array_equal(x[:3], first[:, :-1])
    np.testing.assert_array_equal(y[:3], first[:, -1])


def test_label_column_header_delimiter_and_float_targets(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text("2.5;1;2\n-1.25;3;4\n")
    x, y = data.load_csv(path, label_column=0, header=False, delimiter=";",
                         label_dtype=np.float32)
    np.testing.assert_array_equal(x, [[1, 2], [3, 4]])
    np.testing.assert_array_equal(y, [2.5, -1.25])
    assert y.dtype == np.float32
    features = data.load_csv(str(path), label_column=None, header=False, delimiter=";")
    np.testing.assert_array_equal(features, [[2.5, 1, 2], [-1.25, 3, 4]])


@isolated
def test_a_malformed_file_names_the_line_and_column(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("a,b,label\n1,2,0\n3,abc,1\n")
    with pytest.raises(backprop.FormatError, match="line 3, column 2"):
        data.load_csv(path)


@isolated
def test_labels_must_be_whole_numbers_unless_float_targets_are_asked_for(tmp_path):
    path = tmp_path / "targets.csv"
    path.write_text("x,y\n1,0.5\n2,1.5\n")
    with pytest.raises(backprop.FormatError):
        data.load_csv(path)
    _, y = data.load_csv(path, label_dtype="float32")
    np.testing.assert_array_equal(y, [0.5, 1.5])


@isolated
def test_a_missing_file_is_an_os_error(tmp_path):
    with pytest.raises(OSError):
        data.load_csv(tmp_path / "nowhere.csv")


@pytest.mark.parametrize("kwargs, match", [
    ({"delimiter": ",,"}, "delimiter"), ({"delimiter": "é"}, "delimiter"),
    ({"label_dtype": np.float64}, "label_dtype"),
])
def test_bad_arguments_are_refused_in_python(kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.load_csv(DIGITS, **kwargs)


@isolated
def test_the_library_refuses_what_python_passes_on(tmp_path):
    with pytest.raises(backprop.InvalidArgumentError):
        data.load_csv(DIGITS, label_column=65)
    with pytest.raises(backprop.InvalidArgumentError):
        data.load_csv(DIGITS, delimiter="e")
    with pytest.raises(backprop.FormatError):
        data.load_csv(DIGITS, max_bytes=100)


def test_the_dataset_is_freed_once_on_success_and_on_failure(monkeypatch, tmp_path):
    freed = []
    original = data._free_dataset
    monkeypatch.setattr(data, "_free_dataset", lambda h: freed.append(h) or original(h))
    data.load_csv(DIGITS)
    path = tmp_path / "fraction.csv"
    path.write_text("x,label\n1,0.5\n")
    with pytest.raises(backprop.FormatError):
        data.load_csv(path)  # the labels fail after the dataset was made
    assert len(freed) == 2
