"""promtool, from Debian's ``prometheus`` package (``make test`` installs it), checks the
shipped rules and runs their unit tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    assert tool is not None, "promtool is missing: `make test` installs Debian's prometheus"
    return subprocess.run(
        [tool, *args], capture_output=True, text=True, timeout=60, check=False, cwd=RULES
    )


def test_promtool_accepts_the_rules() -> None:
    """``promtool check rules`` finds the rules file valid: PromQL that parses, templates
    that render, no duplicate recording rules."""
    result = promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_rules_unit_tests_pass() -> None:
    """``promtool test rules alerts_test.yml``: each alert fires on its input series where it
    should, with its labels and annotations, and stays silent where it should not."""
    result = promtool("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
