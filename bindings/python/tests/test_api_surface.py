"""The public surface is documented and typed: a docstring on every public name, type hints on
every public function and method (resolvable with typing.get_type_hints), a py.typed marker, and
the facts users need about threads and memory written where they look."""

import enum
import inspect
import typing

import pytest

import backprop
import backprop.data
import backprop.nn
import backprop.nn.utils
import backprop.optim
import backprop.optim.lr_scheduler
from support import PYTHON_DIR

MODULES = [backprop, backprop.nn, backprop.nn.utils, backprop.optim, backprop.optim.lr_scheduler,
           backprop.data]
try:
    import backprop.sklearn
    MODULES.append(backprop.sklearn)
except ImportError:  # scikit-learn is optional
    pass

PUBLIC = list({id(obj): obj for module in MODULES for obj in
               (getattr(module, name) for name in module.__all__ if name != "__version__")
               if inspect.isclass(obj) or inspect.isfunction(obj) or inspect.ismodule(obj)
               }.values())
CLASSES = [obj for obj in PUBLIC if inspect.isclass(obj)]
FUNCTIONS = [obj for obj in PUBLIC if inspect.isfunction(obj)]


def members(cls):
    """The public methods and properties a class defines itself (not inherited from object or
    Exception), plus __init__."""
    for name, value in vars(cls).items():
        if name.startswith("_") and name != "__init__":
            continue
        if isinstance(value, property) or inspect.isfunction(value) or \
                isinstance(value, (classmethod, staticmethod)):
            yield f"{cls.__name__}.{name}", value


MEMBERS = [member for cls in CLASSES if not issubclass(cls, enum.Enum) and
           cls.__module__.startswith("backprop") for member in members(cls)]


def function_of(value):
    if isinstance(value, property):
        return value.fget
    if isinstance(value, (classmethod, staticmethod)):
        return value.__func__
    return value


def test_every_public_name_has_a_docstring():
    missing = [getattr(obj, "__name__", repr(obj)) for obj in PUBLIC
               if not (inspect.getdoc(obj) or "").strip()]
    assert missing == []


@pytest.mark.parametrize("name, value", MEMBERS, ids=[name for name, _ in MEMBERS])
def test_every_public_method_and_property_has_a_docstring(name, value):
    if name.endswith(".__init__"):
        return  # documented by the class docstring
    assert (function_of(value).__doc__ or "").strip(), f"{name} has no docstring"


@pytest.mark.parametrize("name, value", MEMBERS + [(f.__name__, f) for f in FUNCTIONS],
                         ids=[name for name, _ in MEMBERS] + [f.__name__ for f in FUNCTIONS])
def test_every_public_function_is_fully_annotated(name, value):
    function = function_of(value)
    signature = inspect.signature(function)
    unannotated = [parameter.name for parameter in signature.parameters.values()
                   if parameter.name not in ("self", "cls")
                   and parameter.annotation is inspect.Parameter.empty]
    assert unannotated == [], f"{name}: parameters without a type: {unannotated}"
    assert signature.return_annotation is not inspect.Signature.empty, f"{name}: no return type"
    # Every annotation names something that exists.
    hints = typing.get_type_hints(function)
    assert "return" in hints


def test_the_package_is_marked_as_typed():
    assert (PYTHON_DIR / "backprop" / "py.typed").is_file()


def test_the_gil_is_documented_in_the_readme_and_the_docstrings():
    readme = (PYTHON_DIR / "README.md").read_text()
    for text in (readme, backprop.__doc__, backprop.Graph.__doc__, backprop.Network.__doc__):
        assert "GIL" in text and "thread" in text
