"""The report as JSON (``--trt-report=FILE.json``): every CSV column plus what a CSV cannot hold.

A report file whose name ends in ``.json`` is written as one JSON object instead of a CSV:

.. code-block:: json

    {"format": "pytest-trtbench-report", "version": 1, "gpu": "h200",
     "cases": [{"case_id": "...", "status": "pass", "...": "every CSV column",
                "nodeid": "suites/test_bert.py::test_bert[onnxruntime-fp32-b1-seq128]",
                "latency": {"method": "cuda-graph-pinned", "median_ms": 1.61, "blocks":
                            [{"median_ms": 1.61, "iqr_ms": 0.002, "n": 62}, "..."], "notes": ["..."],
                            "telemetry": {"...": "..."}},
                "latency_check": {"baseline_ms": 1.6, "change_pct": 0.4, "confidence": 0.0,
                                  "verdict": "pass", "reason": "...", "decision": {"...": "..."}}}]}

``latency.blocks`` are the independent timed blocks the latency gate reasons about (the same
``{median_ms, iqr_ms, n}`` a baseline stores per run), ``latency.notes`` the timing notes (why a CUDA
graph was not used, high CoV, enqueue-bound), ``latency_check`` the gate's numbers. So a dashboard or
an offline re-analysis (``benchmarks/gate_analysis.py``) needs no baseline update and no CSV parsing.
Non-finite numbers (a case that was not timed has NaN medians) are written as ``null``: the file is
strict JSON. Written atomically, like the CSV; under ``-n auto`` the controller writes it.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

if TYPE_CHECKING:
    from pytest_trtbench.outcome import CaseOutcome

FORMAT = "pytest-trtbench-report"
VERSION = 1


def is_json_report(path: Path) -> bool:
    return Path(path).suffix.lower() == ".json"


def _finite(value: Any) -> Any:
    """*value* with every non-finite float replaced by ``None`` (nested dicts, lists, tuples)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def case_entry(outcome: CaseOutcome, row: Mapping[str, Any]) -> dict[str, Any]:
    """One case: its report row, node id, latency (blocks, notes, telemetry) and the gate's check."""
    return _finite({
        **row, "nodeid": outcome.nodeid,
        "latency": outcome.latency.to_json() if outcome.latency is not None else None,
        "latency_check": outcome.latency_check.to_json(),
    })


def report_json(results: Sequence[CaseOutcome], rows: Sequence[Mapping[str, Any]], gpu: str) -> str:
    cases = [case_entry(o, r) for o, r in zip(results, rows)]
    return json.dumps({"format": FORMAT, "version": VERSION, "gpu": gpu, "cases": cases}, indent=1,
                      allow_nan=False) + "\n"


def write_json_report(results: Sequence[CaseOutcome], rows: Sequence[Mapping[str, Any]], path: Path,
                      gpu: str) -> None:
    from pytest_trtbench.baseline import write_atomic

    write_atomic(Path(path), report_json(results, rows, gpu))


def load_json_report(path: Path) -> list[dict[str, Any]]:
    """The cases of a JSON report, plain or gzipped (ValueError naming the file when it is not one)."""
    import gzip

    try:
        raw = Path(path).read_bytes()
        data = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable JSON report: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("cases"), list):
        raise ValueError(f"{path}: not a pytest-trtbench JSON report (written by --trt-report=FILE.json)")
    return list(data["cases"])
