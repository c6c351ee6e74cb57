"""Every status becomes its own exception class, carrying the library's message."""

import ctypes
import threading

import numpy as np
import pytest

import backprop
from backprop import Status, _capi
from backprop.errors import check, error_class
from support import last_error, lib

CLASSES = {
    Status.INVALID_ARGUMENT: backprop.InvalidArgumentError,
    Status.INVALID_HANDLE: backprop.InvalidHandleError,
    Status.SHAPE: backprop.ShapeError,
    Status.STATE: backprop.StateError,
    Status.BUSY: backprop.BusyError,
    Status.OUT_OF_MEMORY: backprop.OutOfMemoryError,
    Status.NONFINITE: backprop.NonFiniteError,
    Status.IO: backprop.BackpropIOError,
    Status.FORMAT: backprop.FormatError,
    Status.INTERNAL: backprop.InternalError,
}


def fail_once():
    """Makes the library fail (an unknown dtype) and returns its message."""
    handle = _capi.GraphHandle()
    assert lib.bp_graph_create(99, ctypes.byref(handle)) == Status.INVALID_ARGUMENT
    message = last_error()
    assert message, "a failed call must leave a message"
    return message


def test_ok_raises_nothing():
    assert check(Status.OK) is None
    assert check(0) is None


def test_every_status_has_its_own_subclass():
    assert set(CLASSES) == set(Status) - {Status.OK}
    assert len(set(CLASSES.values())) == len(CLASSES)
    for status, cls in CLASSES.items():
        assert issubclass(cls, backprop.BackpropError)
        assert cls.status == status
        assert error_class(status) is cls


@pytest.mark.isolated
@pytest.mark.parametrize("status", list(CLASSES), ids=lambda s: s.name)
def test_check_raises_the_subclass_with_the_library_message(status):
    message = fail_once()
    with pytest.raises(CLASSES[status]) as caught:
        check(status)
    assert caught.value.status == status
    assert caught.value.message == message
    assert str(caught.value) == message


@pytest.mark.isolated
def test_an_unknown_status_raises_the_base_class():
    message = fail_once()
    with pytest.raises(backprop.BackpropError) as caught:
        check(42)
    assert type(caught.value) is backprop.BackpropError
    assert caught.value.status == 42
    assert caught.value.message == message


def test_subclasses_are_also_the_matching_builtin_exceptions():
    assert issubclass(backprop.InvalidArgumentError, ValueError)
    assert issubclass(backprop.InvalidHandleError, ValueError)
    assert issubclass(backprop.ShapeError, ValueError)
    assert issubclass(backprop.OutOfMemoryError, MemoryError)
    assert issubclass(backprop.NonFiniteError, ArithmeticError)
    assert issubclass(backprop.BackpropIOError, OSError)
    assert issubclass(backprop.FormatError, ValueError)


def test_an_error_without_a_message_is_named_by_its_status():
    assert str(backprop.ShapeError()).startswith("BP_ERR_SHAPE")


# Real failures, raised through the Pythonic API: the exception's message is the one the library
# left for this thread.

def raises_with_library_message(cls, action):
    with pytest.raises(cls) as caught:
        action()
    assert caught.value.message, "the library must describe the failure"
    assert caught.value.message == last_error()
    return caught.value


@pytest.mark.isolated
def test_invalid_argument_from_the_library():
    graph = backprop.Graph()
    raises_with_library_message(backprop.InvalidArgumentError, lambda: graph.input((2, 0)))


@pytest.mark.isolated
def test_invalid_handle_from_the_library():
    graph = backprop.Graph()
    graph.input(3)
    raises_with_library_message(backprop.InvalidHandleError,
                                lambda: graph.value(backprop.Node(graph, 999)))


@pytest.mark.isolated
def test_shape_from_the_library():
    graph = backprop.Graph()
    a, b = graph.input((2, 3)), graph.input(4)
    error = raises_with_library_message(backprop.ShapeError, lambda: a + b)
    assert "add" in error.message.lower()


@pytest.mark.isolated
def test_state_from_the_library():
    graph = backprop.Graph()
    y = graph.input(3).exp()
    raises_with_library_message(backprop.StateError, lambda: y.value)


@pytest.mark.isolated
def test_out_of_memory_from_the_library():
    graph = backprop.Graph()
    raises_with_library_message(backprop.OutOfMemoryError,
                                lambda: graph.input((2 ** 40, 2 ** 40)))


@pytest.mark.isolated
def test_nonfinite_from_the_library():
    net = backprop.Network(2).add_dense(1, None)
    raises_with_library_message(backprop.NonFiniteError,
                                lambda: net.forward(np.array([[np.nan, 0.0]])))


@pytest.mark.isolated
def test_last_error_is_empty_on_a_thread_that_never_failed():
    fail_once()
    seen = []
    thread = threading.Thread(target=lambda: seen.append(last_error()))
    thread.start()
    thread.join()
    assert seen == [""]


@pytest.mark.isolated
def test_last_error_is_per_thread():
    message = fail_once()
    other = []

    def fail_differently():
        graph = backprop.Graph()
        with pytest.raises(backprop.ShapeError) as caught:
            graph.input((2, 3)) + graph.input(4)
        other.append(caught.value.message)

    thread = threading.Thread(target=fail_differently)
    thread.start()
    thread.join()
    assert other and other[0] != message
    assert last_error() == message
