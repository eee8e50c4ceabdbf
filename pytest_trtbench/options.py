"""The ``--trt-*`` options: names as module constants, ``type=`` parsers that raise ``pytest.UsageError``
naming the rule broken, the option table with matching ini keys, and how a value is read (command line, else
ini, else the default). Add an option here: a constant, a row of ``_VALUED`` (or ``_FLAGS``), and read it with
:func:`get_option`.

Nothing heavy is imported: parsers import what they check (the backend registry, the gate) when called.
"""

from __future__ import annotations

import importlib
import math
from typing import Any, Callable

import pytest

GPU = "--trt-gpu"
BACKEND = "--trt-backend"
CACHE_DIR = "--trt-cache-dir"
BASELINE_DIR = "--trt-baseline-dir"
REBUILD = "--trt-rebuild"
UPDATE_BASELINES = "--trt-update-baselines"
REPORT = "--trt-report"
LATENCY_TOLERANCE = "--trt-latency-tolerance"
NO_LATENCY_GATE = "--trt-no-latency-gate"
LATENCY_GATE = "--trt-latency-gate"
STRICT = "--trt-strict"
BUILD_ONLY = "--trt-build-only"
WARMUP_S = "--trt-warmup-s"
BLOCKS = "--trt-blocks"
MIN_BLOCK_ITERS = "--trt-min-block-iters"
MIN_BLOCK_S = "--trt-min-block-s"
CONFIRM = "--trt-confirm"
HISTORY = "--trt-history"
SIZE = "--trt-size"
CUDA_GRAPH = "--trt-cuda-graph"
NO_CUDA_GRAPH = "--trt-no-cuda-graph"
ENERGY_S = "--trt-energy-s"
FUZZ = "--trt-fuzz"
FUZZ_SEED = "--trt-fuzz-seed"
BUILD_OPTION = "--trt-build-option"
CACHE_MAX_SIZE = "--trt-cache-max-size"
CUDA = "--trt-cuda"
PROFILE_LAYERS = "--trt-profile-layers"

DEFAULT_CACHE_DIR = ".trtbench-cache"
BUILD_OPTION_WHERE = f"{BUILD_OPTION} (ini {BUILD_OPTION.lstrip('-').replace('-', '_')})"
"""How errors about the session's build options name where they were given."""


def ini_name(option: str) -> str:
    """The ini key matching *option*: ``--trt-gpu`` -> ``trt_gpu``."""
    return option.lstrip("-").replace("-", "_")


def _number(kind: type, minimum: float, *, inclusive: bool) -> Callable[[str], Any]:
    """A ``type=`` parser: *kind* (int or float) with ``value >= minimum`` (or ``>`` if not *inclusive*);
    anything else is a ``pytest.UsageError`` naming the rule."""
    noun = "an integer" if kind is int else "a number"
    rule = f"{'>=' if inclusive else '>'} {minimum:g}"

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise pytest.UsageError(f"expected {noun}, got {text!r}") from None
        if not math.isfinite(value) or not (value >= minimum if inclusive else value > minimum):
            raise pytest.UsageError(f"expected {noun} {rule}, got {text!r}")
        return value

    return parse


_positive_float = _number(float, 0, inclusive=False)
_non_negative_int = _number(int, 0, inclusive=True)
_positive_int = _number(int, 1, inclusive=True)
_non_negative_float = _number(float, 0, inclusive=True)


def _value_error_as_usage(target: str, where: str = "") -> Callable[[str], Any]:
    """A ``type=`` parser calling ``module:function`` (imported when first used, so nothing heavy at plugin
    import) that turns the function's ``ValueError`` into a ``pytest.UsageError``, prefixed by *where*."""
    module, _, name = target.partition(":")

    def parse(text: str) -> Any:
        function = getattr(importlib.import_module(module), name)
        try:
            return function(text)
        except ValueError as exc:
            raise pytest.UsageError(f"{where}: {exc}" if where else str(exc)) from None

    parse.__name__ = name
    return parse


# the option (or ini key) given the bad value is named by _naming (option types in _VALUED): they name none
_tolerance = _value_error_as_usage("pytest_trtbench.gate:parse_tolerance")  # 5% or 0.05 (a fraction)
_cuda_layer = _value_error_as_usage("pytest_trtbench.cuda.select:parse_layer")
_size = _value_error_as_usage("pytest_trtbench.cache_admin:parse_size")
_build_option = _value_error_as_usage("pytest_trtbench.build_options:parse_build_option", BUILD_OPTION)  # no _naming


def checked_cuda(requested: str, device: Any, executes: bool = True) -> str:
    """``--trt-cuda`` for a run on *device*: where a GPU run executes engines, the layer must be usable (a usage
    error says why and the fix); ``--collect-only`` and ``--trt-build-only`` need none."""
    if not device.has_cuda or not executes:
        return requested
    from pytest_trtbench.cuda.select import CudaLayerError, choose, probe

    try:
        choose(requested, probe(requested))
    except CudaLayerError as exc:
        raise pytest.UsageError(str(exc)) from None
    return requested


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in choices:
            raise pytest.UsageError(f"expected one of {', '.join(choices)}; got {text!r}")
        return text

    return parse


def _gate_mode(text: str) -> str:
    if text not in ("on", "off", "auto"):
        raise pytest.UsageError(f"expected on, off or auto; got {text!r}")
    return text


def _backends(text: str) -> str:
    """Backend names, checked against the registry (built-ins and the entry-point group), or ``auto``."""
    from pytest_trtbench.backends.registry import BackendRegistryError, backend_names, unknown_backend_message

    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise pytest.UsageError("expected at least one backend name")
    try:
        known = backend_names()
    except BackendRegistryError as exc:
        raise pytest.UsageError(str(exc)) from None
    for name in names:
        if name != "auto" and name not in known:
            raise pytest.UsageError(unknown_backend_message(name))
    return ",".join(names)


def build_options(config: pytest.Config) -> dict[str, str]:
    """The session's build options as text: ini ``trt_build_option`` lines, then ``--trt-build-option`` (later
    wins). Which backends accept them is checked once the run's cases are collected (:data:`BUILD_OPTION_WHERE`)."""
    from pytest_trtbench.build_options import parse_build_option

    options: dict[str, str] = {}
    for line in config.getini(ini_name(BUILD_OPTION)):
        try:
            key, value = parse_build_option(line)
        except ValueError as exc:
            raise pytest.UsageError(f"ini {ini_name(BUILD_OPTION)}: {exc}") from None
        options[key] = value
    options.update(config.getoption(BUILD_OPTION) or [])
    return options


def _naming(where: str, parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """*parse* with its usage errors prefixed by the option (or ini key) that was given the bad value."""
    def named(text: str) -> Any:
        try:
            return parse(text)
        except pytest.UsageError as exc:
            raise pytest.UsageError(f"{where}: {exc}") from None

    named.__name__ = getattr(parse, "__name__", "value")
    return named


# (option, type, default, help); flags have type None
_VALUED: list[tuple[str, Callable[[str], Any], Any, str]] = [
    (GPU, str, "auto", "GPU profile: a short name (a10, l4, h100), 'auto' (the present device) or 'cpu'. "
     "Selects baselines/<gpu>/ and the cache namespace"),
    (BACKEND, _backends, "auto", "backend(s) for suites that name none: onnxruntime, tensorrt, a backend "
     "registered under the pytest_trtbench.backends entry-point group, several comma-separated, or auto "
     "(tensorrt where TensorRT and a GPU that runs its engines are present)"),
    (CACHE_DIR, str, DEFAULT_CACHE_DIR, "engine cache directory, relative to the project (the ini file's "
     "directory, else the first folder above the suite file with baselines/ or pyproject.toml, else the rootdir)"),
    (BASELINE_DIR, str, "baselines", "baseline directory, relative to the project (as for the cache)"),
    (CACHE_MAX_SIZE, _size, None, "at session end, prune least recently used cache entries until the cache is "
     "at most this size (500MB, 2G; default: no limit)"),
    (REPORT, str, "", "write the CSV report to this file (FILE.json: the JSON report, with timed blocks)"),
    (LATENCY_TOLERANCE, _tolerance, 0.05, "allowed slowdown before a latency regression: a fraction below 1 "
     "(0.05) or a percentage (5%%)"),
    (LATENCY_GATE, _gate_mode, "auto", "latency gate: on (fail regressions), off, or auto "
     "(on for GPUs; advisory on CPU: a slowdown is reported, the case still passes)"),
    (WARMUP_S, _positive_float, 0.05, "warmup seconds before timing"),
    (BLOCKS, _positive_int, 5, "independent timed blocks per case"),
    (MIN_BLOCK_ITERS, _positive_int, 5, "minimum iterations per block"),
    (MIN_BLOCK_S, _positive_float, 0.02, "minimum seconds per block"),
    (ENERGY_S, _non_negative_float, 1.0, "GPU: seconds of back-to-back launches for the energy per inference "
     "(NVML; 0: skip)"),
    (CONFIRM, _non_negative_int, 1, "re-measurements that must confirm a latency regression"),
    (HISTORY, _positive_int, 10, "baseline runs kept per case for the noise estimate"),
    (CUDA, _cuda_layer, "auto", "GPU: the CUDA library that moves buffers, runs streams and times engines: torch, "
     "cuda-python, pycuda, or auto (the first usable in that order)"),
    (SIZE, _choice("tiny", "full"), "tiny", "model size of the shipped suites: tiny (CPU CI) or full (GPU)"),
    (FUZZ, _non_negative_int, None, "shape fuzzing: draw N shapes inside the profile per backend x precision "
     "of every suite, overriding its fuzz_shapes (0: off; default: the suite's fuzz_shapes)"),
    (FUZZ_SEED, _non_negative_int, None, "explore other fuzz shapes with this seed (default: derived from each "
     "suite's seed, so runs repeat)"),
]
_FLAGS = [
    (REBUILD, "ignore cached engines and rebuild them"),
    (UPDATE_BASELINES, "write or refresh baselines for the cases that ran"),
    (NO_LATENCY_GATE, f"do not gate latency (alias of {LATENCY_GATE}=off)"),
    (STRICT, "fail cases that have no baseline yet"),
    (BUILD_ONLY, "build and cache engines, execute nothing"),
    (PROFILE_LAYERS, "per-layer profile of every executed case (always done for slower cases and on "
     "--trt-update-baselines, which stores it)"),
]


def add_options(parser: pytest.Parser) -> None:
    """Every ``--trt-*`` option in one group, each with its ini key (the plugin's ``pytest_addoption``)."""
    group = parser.getgroup("trtbench", "TensorRT / ONNX Runtime model benchmarks (pytest-trtbench)")
    for option, kind, default, help_text in _VALUED:
        shown = "" if default is None else f"default: {default}; "
        group.addoption(option, type=_naming(option, kind), default=None, help=f"{help_text} ({shown}ini: {ini_name(option)})")
        parser.addini(ini_name(option), help_text, default=None)
    for option, help_text in _FLAGS:
        group.addoption(option, action="store_true", default=None, help=f"{help_text} (ini: {ini_name(option)})")
        parser.addini(ini_name(option), help_text, type="bool", default=None)
    graph_help = "time GPU cases by replaying a CUDA graph of the launch where it can be captured"
    group.addoption(CUDA_GRAPH, dest=ini_name(CUDA_GRAPH), action="store_true", default=None,
                    help=f"{graph_help} (default: on; ini: {ini_name(CUDA_GRAPH)})")
    group.addoption(NO_CUDA_GRAPH, dest=ini_name(CUDA_GRAPH), action="store_false",
                    help="time GPU cases with plain enqueues, no CUDA graph")
    parser.addini(ini_name(CUDA_GRAPH), graph_help, type="bool", default=True)
    build_help = ("engine build option KEY=VALUE for the backends that declare it (tensorrt: opt_level (0-5), "
                  "workspace_mib, hardware_compat; onnxruntime: none), part of their cache key; a suite's "
                  "build_options win for the same key")
    group.addoption(BUILD_OPTION, action="append", type=_build_option, default=None, metavar="KEY=VALUE",
                    help=f"{build_help} (repeatable; ini: {ini_name(BUILD_OPTION)}, one per line)")
    parser.addini(ini_name(BUILD_OPTION), build_help, type="linelist", default=[])


def get_option(config: pytest.Config, option: str) -> Any:
    """*option*'s value: the command line, else the ini key (parsed by the same ``type=``), else the default."""
    value = config.getoption(option)
    if value is not None:
        return value
    ini = config.getini(ini_name(option))
    if option == CUDA_GRAPH:
        return bool(ini)
    for opt, kind, default, _ in _VALUED:
        if opt == option:
            return _naming(f"ini {ini_name(option)}", kind)(str(ini)) if ini not in (None, "") else default
    return bool(ini)
