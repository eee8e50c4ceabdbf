"""Engine build options: ``Suite(build_options={...})`` and ``--trt-build-option KEY=VALUE`` (ini ``trt_build_option``).

The options reach the backend in ``BuildRequest.options`` and are part of the engine cache key, so a
different option builds a different engine. Values are parsed to their type here, so
``--trt-build-option opt_level=3`` and ``build_options={"opt_level": 3}`` make the same key. Which wins:
the ini key < the command line < the suite's ``build_options`` (a suite's own setting beats the session's,
as pytest-timeout's marker beats its option).

Plain Python (no pytest): the plugin turns :class:`ValueError` into a usage error, the suite into a
:class:`~pytest_trtbench.suite.SuiteError`.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

HARDWARE_COMPAT = ("none", "ampere_plus", "same_compute_capability")


def _int_in(low: int, high: int | None) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValueError(f"expected an integer, got {value!r}")
        try:
            number = int(value)
        except ValueError:
            raise ValueError(f"expected an integer, got {value!r}") from None
        if number < low or (high is not None and number > high):
            raise ValueError(f"expected an integer in [{low}, {high if high is not None else 'inf'}], got {value!r}")
        return number

    return parse


def _hardware_compat(value: Any) -> str:
    text = str(value).lower()
    if text not in HARDWARE_COMPAT:
        raise ValueError(f"expected one of {', '.join(HARDWARE_COMPAT)}, got {value!r}")
    return text


BUILD_OPTIONS: dict[str, Callable[[Any], Any]] = {
    "workspace_mib": _int_in(1, None),  # TensorRT: workspace memory pool limit, MiB
    "opt_level": _int_in(0, 5),  # TensorRT: builder optimization level (TensorRT's default: 3)
    "hardware_compat": _hardware_compat,  # TensorRT 10/11: hardware compatibility level; TensorRT-RTX has none
}
"""Known option -> its value parser. Backends that don't know an option ignore it (it still keys the cache)."""


def check_build_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """*options* with every value parsed to its type; :class:`ValueError` naming the key for anything unknown or bad."""
    checked = {}
    for key, value in options.items():
        if key not in BUILD_OPTIONS:
            raise ValueError(f"unknown build option {key!r}; known: {', '.join(sorted(BUILD_OPTIONS))}")
        try:
            checked[key] = BUILD_OPTIONS[key](value)
        except ValueError as exc:
            raise ValueError(f"build option {key}: {exc}") from None
    return checked


def parse_build_option(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` -> ``(key, parsed value)``; :class:`ValueError` naming the rule broken."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise ValueError(f"expected KEY=VALUE (e.g. opt_level=3), got {text!r}")
    return next(iter(check_build_options({key.strip(): value.strip()}).items()))
