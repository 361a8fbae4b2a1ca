"""The alert rules in deploy/prometheus/ are valid (`promtool check rules`) and do what their unit
tests say (`promtool test rules`), with Debian's promtool."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.servers import unavailable

RULES = Path(__file__).resolve().parent.parent / "deploy" / "prometheus"


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        unavailable("promtool is not installed (Debian's prometheus package); tests/run installs it")
    return found


def run(promtool: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_the_alert_rules_are_valid(promtool):
    checked = run(promtool, "check", "rules", "alerts.yml", cwd=RULES)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 8 rules found" in checked.stdout


def test_the_alert_rules_pass_their_unit_tests(promtool):
    tested = run(promtool, "test", "rules", "alerts.test.yml", cwd=RULES)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


@pytest.mark.parametrize("change", [
    ("> 0.05", "> 0.5"),                  # error ratio threshold
    ("> 0.5\n", "> 5\n"),                 # p99 threshold
    ("< 0.10", "< 0.01"),                 # log disk
    ("> 16777216", "> 167772160"),        # replication lag
    ("== 0\n            and on (scope)", "== 1\n            and on (scope)"),  # synchronous standby
])
def test_the_unit_tests_notice_a_changed_threshold(promtool, tmp_path, change):
    """Each threshold is pinned by a unit test: loosening it makes `promtool test rules` fail."""
    before, after = change
    rules = (RULES / "alerts.yml").read_text()
    assert rules.count(before) == 1, before
    (tmp_path / "alerts.yml").write_text(rules.replace(before, after))
    shutil.copy(RULES / "alerts.test.yml", tmp_path / "alerts.test.yml")
    tested = run(promtool, "test", "rules", "alerts.test.yml", cwd=tmp_path)
    assert tested.returncode != 0, tested.stdout
    assert "FAILED" in tested.stdout + tested.stderr
