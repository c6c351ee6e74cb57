"""Shared test machinery: running tests in a child process.

Tests marked ``isolated`` are the ones that feed the library bad input. If the library traps on
such input (a failed Swift precondition kills the process with SIGILL) or crashes, it must fail
that one test, not kill the suite. So the isolated tests of a module run in a child pytest
process, which records each test's outcome as it goes. If the child dies, the test it was running
fails with the signal's name and the child's output, and the tests after it run in a new child.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile

import pytest

CHILD_VARIABLE = "BACKPROP_TEST_ISOLATED"
REPORT_VARIABLE = "BACKPROP_TEST_REPORT"
CHILD_TIMEOUT = 600
# Plugins that only slow a child's start-up (they import a lot and we do not use them).
QUIET_PLUGINS = ["-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:benchmark"]

_outcomes = {}  # node id -> (outcome, text), filled from the children's reports


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "isolated: run the test in a child process, so that a crash in the library "
                   "fails the test instead of killing the suite")
    config.addinivalue_line(
        "markers", "wheel: builds the wheel with pip and installs it into a new virtual "
                   "environment (slow; deselect with -m 'not wheel')")


def in_child():
    return bool(os.environ.get(CHILD_VARIABLE))


# In the child: record every test's outcome, one JSON line per phase, flushed at once.

def pytest_runtest_logreport(report):
    path = os.environ.get(REPORT_VARIABLE)
    if not in_child() or not path:
        return
    text = ""
    if report.failed:
        text = str(report.longrepr)
    elif report.skipped and isinstance(report.longrepr, tuple):
        text = report.longrepr[2]
    with open(path, "a") as stream:
        stream.write(json.dumps({"nodeid": report.nodeid, "when": report.when,
                                 "outcome": report.outcome, "text": text}) + "\n")


# In the parent: run the isolated tests of a module in a child, then report each one.

def pytest_collection_modifyitems(session, config, items):
    config.isolated_items = [item for item in items
                             if item.get_closest_marker("isolated") is not None]


def _read_report(path):
    records = {}
    if os.path.exists(path):
        with open(path) as stream:
            for line in stream:
                record = json.loads(line)
                records.setdefault(record["nodeid"], []).append(record)
    return records


def _outcome(records):
    """The outcome of one test from its phases, or None if it did not finish."""
    if not any(r["when"] == "teardown" for r in records):
        return None
    for record in records:
        if record["outcome"] == "failed":
            return "failed", f"({record['when']}) {record['text']}"
    for record in records:
        if record["outcome"] == "skipped":
            return "skipped", record["text"]
    return "passed", ""


def _run_children(config, nodeids):
    pending = list(nodeids)
    while pending:
        handle, path = tempfile.mkstemp(prefix="backprop-isolated-", suffix=".jsonl")
        os.close(handle)
        command = [sys.executable, "-m", "pytest", "-q", "--no-header", *QUIET_PLUGINS, *pending]
        environment = dict(os.environ, **{CHILD_VARIABLE: "1", REPORT_VARIABLE: path})
        try:
            child = subprocess.run(command, cwd=config.rootpath, env=environment,
                                   capture_output=True, text=True, timeout=CHILD_TIMEOUT)
            output, died = (child.stdout + child.stderr).strip(), child.returncode < 0
            cause = f"killed by {signal.Signals(-child.returncode).name}" if died else ""
        except subprocess.TimeoutExpired as timeout:
            output = ((timeout.stdout or b"") + (timeout.stderr or b"")).decode(errors="replace")
            died, cause = True, f"no answer within {CHILD_TIMEOUT} s (a deadlock?)"
        records = _read_report(path)
        os.unlink(path)

        unfinished = []
        for nodeid in pending:
            outcome = _outcome(records.get(nodeid, []))
            if outcome is None:
                unfinished.append(nodeid)
            else:
                _outcomes[nodeid] = outcome
        if not unfinished:
            return
        if not died:
            for nodeid in unfinished:
                _outcomes[nodeid] = ("failed", f"did not run in the child process:\n{output}")
            return
        # The test that started but did not finish is the one that took the child down.
        started = [n for n in unfinished if n in records]
        culprit = started[0] if started else unfinished[0]
        fatal = output.find("Fatal Python error")  # faulthandler's traceback, if any
        excerpt = output[fatal:fatal + 4000] if fatal >= 0 else output[-4000:]
        _outcomes[culprit] = ("failed", f"the child process running this test was {cause}: the "
                                        f"library crashed on this input. Its output:\n{excerpt}")
        pending = [n for n in unfinished if n != culprit]


def pytest_pyfunc_call(pyfuncitem):
    if pyfuncitem.get_closest_marker("isolated") is None or in_child():
        return None
    nodeid = pyfuncitem.nodeid
    if nodeid not in _outcomes:
        module = pyfuncitem.nodeid.split("::")[0]
        batch = [item.nodeid for item in pyfuncitem.config.isolated_items
                 if item.nodeid.split("::")[0] == module and item.nodeid not in _outcomes]
        _run_children(pyfuncitem.config, batch)
    outcome, text = _outcomes.get(nodeid, ("failed", "no outcome from the child process"))
    if outcome == "skipped":
        pytest.skip(text)
    if outcome == "failed":
        pytest.fail(f"in a child process:\n{text}", pytrace=False)
    return True
