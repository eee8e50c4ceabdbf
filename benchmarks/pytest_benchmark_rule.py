"""pytest-benchmark's ``--benchmark-compare-fail=median:N%`` rule, for comparing with our latency gate.

Used by ``regression_detection.py``; not part of the package (the plugin never applies this rule).
Tested against pytest-benchmark's own check in ``tests/test_pytest_benchmark_rule.py``.
"""
from __future__ import annotations


def pytest_benchmark_rule(baseline_median: float, current_median: float, threshold: float = 0.05) -> bool:
    """True when pytest-benchmark's ``--benchmark-compare-fail=median:5%`` would fail.

    Mirrors ``pytest_benchmark.utils.PercentageRegressionCheck`` exactly: the percentage is parsed
    as an integer, ``val = current / baseline * 100 - 100`` (``inf`` when the baseline is 0) and
    it fails iff ``val > threshold_percent`` (strictly; only slowdowns; NaN never fails there).
    ``threshold`` is a fraction and must name a whole percent, as the CLI syntax requires.
    """
    percent = round(threshold * 100)
    if percent < 0 or abs(threshold * 100 - percent) > 1e-9:
        raise ValueError(f"pytest-benchmark only accepts whole percentages, got threshold={threshold!r}")
    val = float("inf") if not baseline_median else current_median / baseline_median * 100 - 100
    return val > percent
