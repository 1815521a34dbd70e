"""The README's quickstart example runs end to end on the embedded default."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import modelreg

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "quickstart.py"

pytestmark = pytest.mark.slow


def test_quickstart_example(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELREG_")}
    env["MODELREG_HOME"] = str(tmp_path / "home")
    result = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert "breast-cancer-rf@production -> breast-cancer-rf/" in result.stdout
    assert "verified" in result.stdout
    with modelreg.connect(home=tmp_path / "home") as reg:
        production = reg.resolve("breast-cancer-rf@production")
        versions = list(reg.list_versions("breast-cancer-rf").all())
        assert len(versions) == 2
        assert production.metrics["auc"] == max(v.metrics["auc"] for v in versions)
        assert production.lineage.dataset == "sklearn.breast_cancer"
        assert production.lineage.dataset_digest is not None
        assert reg.verify().ok
