"""The code base stays ``ruff`` clean (rules in pyproject.toml)."""

import subprocess
import sys

from tests.conftest import REPO


def test_ruff_check_passes():
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", str(REPO)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-4000:]
