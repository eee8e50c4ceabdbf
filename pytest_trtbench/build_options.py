"""Engine build options: ``Suite(build_options={...})`` and ``--trt-build-option KEY=VALUE`` (ini ``trt_build_option``).

Each backend declares the options it accepts (``Backend.build_options``: a sequence of
:class:`~pytest_trtbench.backends.base.BuildOption` with name, parser, default and doc); TensorRT declares
``workspace_mib``, ``opt_level`` and ``hardware_compat``, ONNX Runtime none. A key that no backend of the run
(or of the suite) accepts is refused with one line naming where it was given, the key and the accepted keys.

A case's engine gets only the options its backend accepts, each parsed by that backend's parser
(:func:`options_for`), so ``--trt-build-option opt_level=3`` and ``build_options={"opt_level": 3}`` make the
same key, and a TensorRT-only option does not rebuild ONNX Runtime entries. Which wins: the ini key < the
command line < the suite's ``build_options`` (a suite's own setting beats the session's, as pytest-timeout's
marker beats its option).

Plain Python (no pytest): the plugin turns :class:`ValueError` into a usage error, the suite's into an
invalid-suite item.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from pytest_trtbench.backends.base import BuildOption

if TYPE_CHECKING:
    from pytest_trtbench.backends.base import Backend

FRAMEWORK_OPTIONS = ("fp32_ops", "calibration_method")
"""Options the harness itself puts into ``BuildRequest.options`` from the suite (``fp32_ops``, ``calibration_method``,
read by the shared precision step); not build options a user sets, passed to every backend."""


def int_in(low: int, high: int | None) -> Callable[[Any], int]:
    """A :class:`BuildOption` parser: an integer (or its text) in ``[low, high]`` (``high=None``: no upper bound)."""

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


def one_of(*choices: str) -> Callable[[Any], str]:
    """A :class:`BuildOption` parser: one of *choices*, case-insensitively (returned lower-case)."""

    def parse(value: Any) -> str:
        text = str(value).lower()
        if text not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
        return text

    return parse


def declared_options(backend: Backend) -> dict[str, BuildOption]:
    """The build options *backend* accepts, by name (none when it declares none); ValueError if the
    declaration is malformed (a third-party backend's mistake, named)."""
    declared = getattr(backend, "build_options", ())
    out: dict[str, BuildOption] = {}
    for option in declared:
        if not isinstance(option, BuildOption) or not callable(option.parse):
            raise ValueError(f"backend {backend.name!r} declares build option {option!r}; expected BuildOption(...)")
        out[option.name] = option
    return out


def accepted_keys(backends: Iterable[Backend]) -> str:
    """``"onnxruntime: none; tensorrt: hardware_compat, opt_level, workspace_mib"`` for error messages."""
    return "; ".join(f"{b.name}: {', '.join(sorted(declared_options(b))) or 'none'}" for b in backends)


def check_accepted(options: Mapping[str, Any], backends: Iterable[Backend], where: str) -> None:
    """Every key of *options* is accepted by at least one of *backends* and parses there; else ValueError
    naming *where* (the option or the suite), the key and the keys each backend accepts."""
    backends = list(backends)
    for key, value in options.items():
        takers = [b for b in backends if key in declared_options(b)]
        if not takers:
            names = ", ".join(b.name for b in backends) or "none"
            raise ValueError(
                f"{where}: key {key!r} is not a build option of the backend(s) in use ({names}); "
                f"accepted keys: {accepted_keys(backends)}"
            )
        for backend in takers:
            try:
                declared_options(backend)[key].parse(value)
            except ValueError as exc:
                raise ValueError(f"{where}: {key} ({backend.name}): {exc}") from None


def options_for(backend: Backend, options: Mapping[str, Any]) -> dict[str, Any]:
    """The part of *options* that *backend* accepts, each value parsed by its parser (framework options
    pass through); keys it does not accept are left out, so they neither reach its build nor its cache key."""
    declared = declared_options(backend)
    out: dict[str, Any] = {}
    for key, value in options.items():
        if key in FRAMEWORK_OPTIONS:
            out[key] = value
        elif key in declared:
            try:
                out[key] = declared[key].parse(value)
            except ValueError as exc:
                raise ValueError(f"build option {key} ({backend.name}): {exc}") from None
    return out


def parse_build_option(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` -> ``(key, value)`` as text; ValueError naming the rule. Whether a backend accepts the
    key, and the value's type, are checked once the run's backends are known (:func:`check_accepted`)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise ValueError(f"expected KEY=VALUE (e.g. opt_level=3), got {text!r}")
    return key.strip(), value.strip()
