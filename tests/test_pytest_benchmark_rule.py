"""benchmarks/pytest_benchmark_rule.py (what regression_detection.py compares our gate with) against
pytest-benchmark's own ``--benchmark-compare-fail`` check."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "pytest_benchmark_rule", Path(__file__).resolve().parents[1] / "benchmarks" / "pytest_benchmark_rule.py"
)
assert _spec is not None and _spec.loader is not None
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)
pytest_benchmark_rule = _module.pytest_benchmark_rule


def test_pytest_benchmark_rule_matches_its_definition() -> None:
    # PercentageRegressionCheck: current / compared * 100 - 100 > int percent, strictly
    assert not pytest_benchmark_rule(10.0, 10.4)
    assert pytest_benchmark_rule(10.0, 10.6)
    assert not pytest_benchmark_rule(10.0, 8.0)  # faster never fails
    assert pytest_benchmark_rule(1.0, 1.05) == (1.05 / 1.0 * 100 - 100 > 5)  # float edge, as upstream
    assert not pytest_benchmark_rule(100.0, 105.0)  # exactly +5 % is not > 5
    assert pytest_benchmark_rule(0.0, 1.0)  # zero baseline: inf
    assert pytest_benchmark_rule(10.0, 11.5, threshold=0.10)
    with pytest.raises(ValueError, match="whole percentages"):
        pytest_benchmark_rule(10.0, 11.0, threshold=0.055)


def test_pytest_benchmark_rule_agrees_with_upstream_check() -> None:
    from pytest_benchmark.utils import parse_compare_fail

    check = parse_compare_fail("median:5%")
    for base, cur in [(10.0, 10.5), (10.0, 10.50001), (1.0, 1.05), (3.0, 3.3), (0.0, 1.0), (2.0, 1.0)]:
        upstream = check.fails({"median": cur}, {"median": base}) is not None
        assert pytest_benchmark_rule(base, cur, 0.05) == upstream, (base, cur)
