"""Shared test machinery.

Tests marked ``isolated`` run in a Python process of their own (a child pytest running just that
test). They are the ones that feed the library bad input: if the library traps on it (a Swift
precondition kills the process with SIGILL) or crashes, that one test fails with the signal's
name and the child's output, and the rest of the suite still runs and reports.
"""

import os
import signal
import subprocess
import sys

import pytest

CHILD_VARIABLE = "BACKPROP_TEST_ISOLATED"


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "isolated: run the test in its own process, so that a crash in the library "
                   "fails the test instead of killing the suite")


def pytest_pyfunc_call(pyfuncitem):
    if pyfuncitem.get_closest_marker("isolated") is None or os.environ.get(CHILD_VARIABLE):
        return None
    command = [sys.executable, "-m", "pytest", "-q", "-rs", "--no-header", "-p", "no:cacheprovider",
               pyfuncitem.nodeid]
    try:
        child = subprocess.run(command, cwd=pyfuncitem.config.rootpath,
                               env=dict(os.environ, **{CHILD_VARIABLE: "1"}),
                               capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired as timeout:
        pytest.fail(f"no answer within {timeout.timeout} s in its own process (a deadlock?)",
                    pytrace=False)
    output = (child.stdout + child.stderr).strip()
    if child.returncode < 0:
        name = signal.Signals(-child.returncode).name
        pytest.fail(f"the test's own process was killed by {name}, so the library crashed on "
                    f"this input; its output:\n{output[-4000:]}", pytrace=False)
    if child.returncode != 0:
        pytest.fail(f"failed in its own process:\n{output[-8000:]}", pytrace=False)
    if " passed" not in output and " skipped" in output:
        pytest.skip(f"skipped in its own process:\n{output[-2000:]}")
    return True
