"""FORBID_SKIPS=1 (CI) turns every skip into a failure that names its reason; without it a
skip stays a skip. Expected failures are not skips and keep their outcome either way."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

# The suite's own hooks, in a run of its own, without the rest of the suite's fixtures.
CONFTEST = "from tests.conftest import pytest_make_collect_report, pytest_runtest_makereport\n"

TESTS = """
import pytest

def test_that_needs_a_tool():
    pytest.skip("needs a tool this machine lacks")

@pytest.mark.skipif(True, reason="needs another tool")
def test_marked_to_skip():
    pass

@pytest.mark.xfail(reason="a known bug")
def test_of_a_known_bug():
    assert False

def test_that_runs():
    pass
"""

SKIPPED_MODULE = """
import pytest

pytest.importorskip("a_package_nobody_installed", reason="needs a package nobody installed")

def test_never_collected():
    pass
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_tools=TESTS, test_module_skip=SKIPPED_MODULE)
    return pytester


def test_without_forbid_skips_a_skip_is_a_skip(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FORBID_SKIPS", raising=False)

    result = suite.runpytest("-p", "no:django", "-p", "no:cacheprovider", "-rs")

    result.assert_outcomes(passed=1, skipped=3, xfailed=1)


def test_with_forbid_skips_every_skip_fails_naming_its_reason(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORBID_SKIPS", "1")

    result = suite.runpytest("-p", "no:django", "-p", "no:cacheprovider", "--continue-on-collection-errors")

    # A skip in a test's body fails it; one at setup (a mark, a fixture) or at collection
    # (a whole module) is an error: pytest's word for a failure outside the test's body.
    result.assert_outcomes(passed=1, failed=1, errors=2, xfailed=1)
    result.stdout.fnmatch_lines_random(
        [
            "*FORBID_SKIPS=1 forbids skipping: needs a tool this machine lacks*",
            "*FORBID_SKIPS=1 forbids skipping: needs another tool*",
            "*FORBID_SKIPS=1 forbids skipping: needs a package nobody installed*",
        ]
    )


def test_forbid_skips_accepts_only_one_or_zero(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORBID_SKIPS", "yes")

    result = suite.runpytest("-p", "no:django", "-p", "no:cacheprovider")

    assert result.ret != 0
    result.stderr.fnmatch_lines(["*FORBID_SKIPS must be 1 (skips fail) or 0/unset (skips skip), not 'yes'*"])
