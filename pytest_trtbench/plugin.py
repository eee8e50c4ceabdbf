"""The pytest entry point: options, suite collection, fixtures, session summary. Thin glue.

Nothing heavy is imported here: the runner (and through it numpy, onnxruntime, torch, pandas)
is imported the first time a case runs or a fixture is requested.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Generator

import pytest

from pytest_trtbench.suite import Case, Suite
from pytest_trtbench.suite_checks import claim_suite_name
from pytest_trtbench.verdict import SKIPPED

if TYPE_CHECKING:
    from pytest_trtbench.fuzz import FuzzTarget
    from pytest_trtbench.outcome import CaseOutcome
    from pytest_trtbench.runner import Harness
    from pytest_trtbench.settings import Settings

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

DEFAULT_CACHE_DIR = ".trtbench-cache"
REPORT_ATTRIBUTE = "trtbench_result"
"""The call report's attribute holding a case's result as JSON (see ``pytest_runtest_makereport``)."""


def _ini(option: str) -> str:
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
_non_negative_float = _number(float, 0, inclusive=True)


def _tolerance(text: str) -> float:
    """``--trt-latency-tolerance``: ``5%`` or ``0.05`` (a fraction); see :func:`gate.parse_tolerance`."""
    from pytest_trtbench.gate import parse_tolerance

    try:
        return parse_tolerance(text)
    except ValueError as exc:
        raise pytest.UsageError(f"{LATENCY_TOLERANCE} (ini {_ini(LATENCY_TOLERANCE)}): {exc}") from None


def _cuda_layer(text: str) -> str:
    from pytest_trtbench.cuda.select import parse_layer

    try:
        return parse_layer(text)
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None


def _checked_cuda(requested: str, device: Any, executes: bool = True) -> str:
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


def _size(text: str) -> int:
    from pytest_trtbench.cache_admin import parse_size

    try:
        return parse_size(text)
    except ValueError as exc:
        raise pytest.UsageError(f"{CACHE_MAX_SIZE}: {exc}") from None


def _gate_mode(text: str) -> str:
    if text not in ("on", "off", "auto"):
        raise pytest.UsageError(f"{LATENCY_GATE} (ini {_ini(LATENCY_GATE)}): expected on, off or auto; got {text!r}")
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


def _build_option(text: str) -> tuple[str, Any]:
    from pytest_trtbench.build_options import parse_build_option

    try:
        return parse_build_option(text)
    except ValueError as exc:
        raise pytest.UsageError(f"{BUILD_OPTION}: {exc}") from None


def _build_options(config: pytest.Config) -> dict[str, Any]:
    """The session's build options: ini ``trt_build_option`` lines, then ``--trt-build-option`` (later wins)."""
    from pytest_trtbench.build_options import parse_build_option

    options: dict[str, Any] = {}
    for line in config.getini(_ini(BUILD_OPTION)):
        try:
            key, value = parse_build_option(line)
        except ValueError as exc:
            raise pytest.UsageError(f"ini {_ini(BUILD_OPTION)}: {exc}") from None
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
    (REPORT, str, "", "write the CSV report to this file"),
    (LATENCY_TOLERANCE, _tolerance, 0.05, "allowed slowdown before a latency regression: a fraction below 1 "
     "(0.05) or a percentage (5%%)"),
    (LATENCY_GATE, _gate_mode, "auto", "latency gate: on (fail regressions), off, or auto "
     "(on for GPUs; advisory on CPU: a slowdown is reported, the case still passes)"),
    (WARMUP_S, _positive_float, 0.05, "warmup seconds before timing"),
    (BLOCKS, _non_negative_int, 5, "independent timed blocks per case"),
    (MIN_BLOCK_ITERS, _non_negative_int, 5, "minimum iterations per block"),
    (MIN_BLOCK_S, _positive_float, 0.02, "minimum seconds per block"),
    (ENERGY_S, _non_negative_float, 1.0, "GPU: seconds of back-to-back launches for the energy per inference "
     "(NVML; 0: skip)"),
    (CONFIRM, _non_negative_int, 1, "re-measurements that must confirm a latency regression"),
    (HISTORY, _non_negative_int, 10, "baseline runs kept per case for the noise estimate"),
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
]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("trtbench", "TensorRT / ONNX Runtime model benchmarks (pytest-trtbench)")
    for option, kind, default, help_text in _VALUED:
        shown = "" if default is None else f"default: {default}; "
        group.addoption(option, type=_naming(option, kind), default=None, help=f"{help_text} ({shown}ini: {_ini(option)})")
        parser.addini(_ini(option), help_text, default=None)
    for option, help_text in _FLAGS:
        group.addoption(option, action="store_true", default=None, help=f"{help_text} (ini: {_ini(option)})")
        parser.addini(_ini(option), help_text, type="bool", default=None)
    graph_help = "time GPU cases by replaying a CUDA graph of the launch where it can be captured"
    group.addoption(CUDA_GRAPH, dest=_ini(CUDA_GRAPH), action="store_true", default=None,
                    help=f"{graph_help} (default: on; ini: {_ini(CUDA_GRAPH)})")
    group.addoption(NO_CUDA_GRAPH, dest=_ini(CUDA_GRAPH), action="store_false",
                    help="time GPU cases with plain enqueues, no CUDA graph")
    parser.addini(_ini(CUDA_GRAPH), graph_help, type="bool", default=True)
    build_help = ("engine build option KEY=VALUE, part of the cache key: opt_level (0-5), workspace_mib, "
                  "hardware_compat; a suite's build_options win for the same key")
    group.addoption(BUILD_OPTION, action="append", type=_build_option, default=None, metavar="KEY=VALUE",
                    help=f"{build_help} (repeatable; ini: {_ini(BUILD_OPTION)}, one per line)")
    parser.addini(_ini(BUILD_OPTION), build_help, type="linelist", default=[])


def _get(config: pytest.Config, option: str) -> Any:
    value = config.getoption(option)
    if value is not None:
        return value
    ini = config.getini(_ini(option))
    if option == CUDA_GRAPH:
        return bool(ini)
    for opt, kind, default, _ in _VALUED:
        if opt == option:
            return _naming(f"ini {_ini(option)}", kind)(str(ini)) if ini not in (None, "") else default
    return bool(ini)


plugin_key = pytest.StashKey["TrtBenchPlugin"]()
result_key = pytest.StashKey[str]()
size_key = pytest.StashKey[str]()
_configured: list[pytest.Config] = []
"""Configs between ``pytest_configure`` and ``pytest_unconfigure``, innermost last (pytester nests runs)."""


def model_size(config: pytest.Config | None = None) -> str:
    """``--trt-size`` of *config*, or of the running session (suite modules call this at import, during
    collection, where no config is at hand); ``tiny`` outside a session."""
    config = config or (_configured[-1] if _configured else None)
    return config.stash.get(size_key, "tiny") if config is not None else "tiny"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.stash[size_key] = _get(config, SIZE)
    _configured.append(config)
    if config.pluginmanager.hasplugin("benchmark"):
        from pytest_trtbench.benchmark_json import disable_benchmarks_under_xdist

        disable_benchmarks_under_xdist(config)
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        from pytest_trtbench.workers import pin_worker, visible_gpus

        pin_worker(workerinput, visible_gpus())
    plugin = TrtBenchPlugin(config)
    config.stash[plugin_key] = plugin
    config.pluginmanager.register(plugin, "trtbench-plugin")
    if config.pluginmanager.hasplugin("benchmark"):
        from pytest_trtbench.benchmark_json import BenchmarkJsonInterop

        config.pluginmanager.register(BenchmarkJsonInterop(plugin.controller_results), "trtbench-benchmark-json")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto`` on a multi-GPU host: one worker per GPU (else xdist's default, the CPU count)."""
    from pytest_trtbench.workers import visible_gpus

    gpus = len(visible_gpus())
    return gpus if gpus > 1 else None


def pytest_unconfigure(config: pytest.Config) -> None:
    if config in _configured:
        _configured.remove(config)
    plugin = config.stash.get(plugin_key, None)
    if plugin is not None:
        plugin.close()
        config.pluginmanager.unregister(plugin)
        if config.pluginmanager.has_plugin("trtbench-benchmark-json"):
            config.pluginmanager.unregister(name="trtbench-benchmark-json")
        del config.stash[plugin_key]


def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> list[pytest.Item] | None:
    if not isinstance(obj, Suite) or not collector.funcnamefilter(name):  # type: ignore[attr-defined]
        return None
    if not obj.name:
        obj.name = name
    if not obj.source_file:
        obj.source_file = os.path.relpath(str(collector.path), str(collector.config.rootpath))
    if obj.is_onnx_file and not Path(os.fspath(obj.model)).is_absolute():  # type: ignore[arg-type]
        obj.model = str(collector.path.parent / os.fspath(obj.model))  # type: ignore[arg-type]  # relative to the suite file
    line = _assignment_line(collector.path, name)
    try:
        claim_suite_name(collector.config.stash[plugin_key].suite_names, obj, collector.path, collector.config.rootpath)
        obj.validate()
        cases = obj.cases(_resolve_backends(collector.config))
        _check_backends({case.backend for case in cases})
    except ValueError as exc:  # SuiteError and the profile's ValueError: this suite only, the others still run
        message = f"suite {name} ({obj.source_file}:{line + 1}) is invalid: {exc}"
        return [InvalidSuiteItem.from_parent(collector, name=f"{name}[invalid-suite]", message=message, line=line)]
    items: list[pytest.Item] = [
        CaseItem.from_parent(collector, name=f"{name}[{case.param_id}]", case=case, line=line) for case in cases
    ]
    examples = _get(collector.config, FUZZ)
    examples = obj.fuzz_shapes if examples is None else examples
    if examples:  # shape fuzzing: one more item per backend x precision
        from pytest_trtbench.fuzz import fuzz_targets

        targets = fuzz_targets(cases, examples)
        items += [FuzzItem.from_parent(collector, name=f"{name}[{t.param_id}]", target=t, line=line) for t in targets]
    return items


def _resolve_backends(config: pytest.Config) -> list[str]:
    names = _get(config, BACKEND).split(",")
    if "auto" in names:
        from pytest_trtbench.backends import default_backend

        chosen = default_backend()
        names = [chosen if n == "auto" else n for n in names]
    return list(dict.fromkeys(names))


def _check_backends(names: set[str]) -> None:
    """A suite's own ``backends=`` must name registered backends (``--trt-backend`` is checked when parsed)."""
    from pytest_trtbench.backends.registry import backend_names, unknown_backend_message

    unknown = sorted(names - set(backend_names()))
    if unknown:
        raise ValueError(unknown_backend_message(unknown[0]))


def _assignment_line(path: Path, name: str) -> int:
    """0-based line of ``name = Suite(...)`` in the suite module, for report locations."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return 0
    return next((i for i, text in enumerate(lines) if text.startswith((f"{name} =", f"{name}:"))), 0)


class CaseFailed(Exception):
    """A case's verdict failed the test; the message is the whole report."""


class SuiteItem(pytest.Item):
    """An item of a suite, reported at the suite's assignment line; a :class:`CaseFailed` is its whole report."""

    def __init__(self, *, line: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._line = line

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, CaseFailed):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo, style=style))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, self._line, self.name


class CaseItem(SuiteItem):
    """One case of a suite, e.g. ``test_mlp[onnxruntime-fp32-b8]``."""

    def __init__(self, *, case: Case, line: int = 0, **kwargs: Any) -> None:
        super().__init__(line=line, **kwargs)
        self.case = case
        self.keywords[case.backend] = True
        self.keywords[case.precision] = True

    def runtest(self) -> None:
        plugin = self.config.stash[plugin_key]
        if plugin.setup_error:
            raise CaseFailed(f"usage error: {plugin.setup_error}")
        result = self._result(plugin)
        cache = plugin.harness().cache
        data = {**result.to_json(), "cache_notes": cache.notes[:]}
        cache.notes.clear()
        self.stash[result_key] = json.dumps(data, allow_nan=True)
        if result.status == SKIPPED:
            # reported at the suite's location, as pytest does for skip markers
            raise pytest.skip.Exception(result.reason, _use_item_location=True)
        if result.message and result.failed:
            raise CaseFailed(result.message)

    def _result(self, plugin: TrtBenchPlugin) -> CaseOutcome:
        return plugin.harness().run_case(self.case)


class FuzzItem(CaseItem):
    """Shape fuzzing for one backend x precision of a suite, e.g. ``test_mlp[fuzz-onnxruntime-fp32]``:
    draws shapes inside the profile, runs the listed cases' engine and the reference at each."""

    def __init__(self, *, target: FuzzTarget, line: int = 0, **kwargs: Any) -> None:
        super().__init__(case=target.anchors[0], line=line, **kwargs)
        self.target = target
        self.keywords["fuzz"] = True

    def _result(self, plugin: TrtBenchPlugin) -> CaseOutcome:
        from pytest_trtbench.fuzz import run_fuzz

        return run_fuzz(plugin.harness(), self.target, _get(self.config, FUZZ_SEED))


class InvalidSuiteItem(pytest.Item):
    """Stands for a suite that could not be expanded into cases: one error (at setup) naming the suite
    and the fix, while the other suites still run (a collection error would stop the whole session)."""

    def __init__(self, *, message: str, line: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.message = message
        self._line = line

    def setup(self) -> None:
        pytest.fail(self.message, pytrace=False)

    def runtest(self) -> None:  # never reached: setup fails
        pytest.fail(self.message, pytrace=False)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, self._line, self.name


class TrtBenchPlugin:
    """Session state: settings, the harness, results gathered from (possibly remote) reports."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.results: list[CaseOutcome] = []
        self._harness: Harness | None = None
        self._settings: Settings | None = None
        self.is_worker = hasattr(config, "workerinput")
        self.written_baselines: list[str] = []
        self.suite_files: list[Path] = []
        self.anchor_why = ""
        self.pruned: tuple[int, int] | None = None
        self.cache_notes: list[str] = []
        self.write_failures: list[str] = []
        self.suite_names: dict[str, Path] = {}
        self.setup_error = ""

    # --- lazily built state --------------------------------------------------------------------

    def settings(self) -> Settings:
        if self._settings is None:
            from pytest_trtbench.device import GpuSelectionError, resolve_device
            from pytest_trtbench.measure import TimingConfig
            from pytest_trtbench.settings import Settings

            config = self.config
            build_only = bool(_get(config, BUILD_ONLY))
            try:
                device = resolve_device(_get(config, GPU), build_only=build_only)
            except (GpuSelectionError, ValueError) as exc:
                raise pytest.UsageError(str(exc)) from None
            from pytest_trtbench.anchor import find_anchor, resolve

            anchor = find_anchor(config.inipath, config.rootpath, self.suite_files)
            self.anchor_why = anchor.why
            self._settings = Settings(
                device=device,
                cache_dir=resolve(anchor, os.environ.get("TRTBENCH_CACHE_DIR") or _get(config, CACHE_DIR)),
                baseline_dir=resolve(anchor, _get(config, BASELINE_DIR)),
                timing=TimingConfig(
                    warmup_s=_get(config, WARMUP_S), blocks=_get(config, BLOCKS),
                    min_block_iters=_get(config, MIN_BLOCK_ITERS), min_block_s=_get(config, MIN_BLOCK_S),
                    use_cuda_graph=bool(_get(config, CUDA_GRAPH)), energy_s=_get(config, ENERGY_S),
                ),
                latency_tolerance=_get(config, LATENCY_TOLERANCE),
                latency_gate="off" if _get(config, NO_LATENCY_GATE) else _get(config, LATENCY_GATE),
                strict=bool(_get(config, STRICT)),
                update_baselines=bool(_get(config, UPDATE_BASELINES)),
                build_only=build_only,
                rebuild=bool(_get(config, REBUILD)),
                confirm=_get(config, CONFIRM),
                history=max(1, _get(config, HISTORY)),
                build_options=_build_options(config),
                cuda=_checked_cuda(_get(config, CUDA), device,
                                   executes=not (build_only or config.getoption("collectonly"))),
            )
        return self._settings

    def harness(self) -> Harness:
        if self._harness is None:
            from pytest_trtbench.runner import Harness

            self._harness = Harness(self.settings(), on_build=self._on_build)
            for tmp in self._harness.cache.clean_stale_tmp():
                self.cache_notes.append(f"removed {tmp}: left by a build that was killed (older than an hour, unlocked)")
        return self._harness

    def _on_build(self, label: str, phase: str, seconds: float) -> None:
        """Progress of a long build, on the terminal even while output is captured (without ``-s``)."""
        from pytest_trtbench.progress import write_progress

        text = {"start": f"building engine {label} ...", "progress": f"still building {label}: {seconds:.0f} s",
                "done": f"built engine {label} in {seconds:.1f} s"}[phase]
        write_progress(self.config, f"[trtbench] {text}")

    def close(self) -> None:
        if self._harness is not None:
            self._harness.close()  # the session's exported / normalized models
        self._harness = None

    # --- hooks ---------------------------------------------------------------------------------

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Outputs the user asked for must be writable before anything is built."""
        if self.is_worker:
            return
        from pytest_trtbench.paths import PathProblem
        from pytest_trtbench.session_outputs import check_output_paths

        report = self._report_path()
        baselines = self.config.rootpath / _get(self.config, BASELINE_DIR) if _get(self.config, UPDATE_BASELINES) else None
        try:
            check_output_paths(report, baselines, report_option=REPORT, baseline_option=BASELINE_DIR)
        except PathProblem as exc:
            raise pytest.UsageError(str(exc)) from None

    def _report_path(self) -> Path | None:
        report = _get(self.config, REPORT)
        if not report:
            return None
        return Path(report) if Path(report).is_absolute() else self.config.rootpath / report

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        self.suite_files = list(dict.fromkeys(i.path for i in items if isinstance(i, (CaseItem, InvalidSuiteItem))))
        if self.suite_files:  # suites were collected (valid or not): option errors are usage errors first
            from pytest_trtbench.cache import CacheDirError, EngineCache

            try:  # a --trt-gpu mismatch or an unusable cache dir is a usage error before anything runs
                EngineCache(self.settings().cache_dir, self.settings().device.gpu).check_usable()
            except CacheDirError as exc:
                self.setup_error = f"{CACHE_DIR}: {exc}"
            except pytest.UsageError as exc:  # an xdist worker can't raise one (INTERNALERROR): its cases fail
                self.setup_error = str(exc)
            if self.setup_error and not self.is_worker:
                raise pytest.UsageError(self.setup_error)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
        """Attach the case's outcome (JSON) to the call report, as Hypothesis attaches its statistics: report
        attributes travel from xdist workers (pytest's report serialization keeps them) and stay out of
        ``--junitxml`` files, which write ``user_properties``."""
        report = yield
        if call.when == "call" and isinstance(item, CaseItem) and result_key in item.stash:
            setattr(report, REPORT_ATTRIBUTE, item.stash[result_key])
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        value = getattr(report, REPORT_ATTRIBUTE, None)
        if report.when != "call" or not isinstance(value, str):
            return
        from pytest_trtbench.outcome import CaseOutcome

        data = json.loads(value)
        self.results.append(replace(CaseOutcome.from_json(data), nodeid=report.nodeid))
        self.cache_notes.extend(data.get("cache_notes", []))

    def controller_results(self) -> list[CaseOutcome]:
        """The outcomes gathered so far on the controller (or in a run without xdist); none on a worker."""
        return [] if self.is_worker else list(self.results)

    def rows(self) -> list[dict[str, Any]]:
        from pytest_trtbench.report import row

        return [row(r) for r in self.results]

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Write every output; one that fails does not stop the others, and fails the session."""
        if self.is_worker:
            return
        from pytest_trtbench.session_outputs import write_session_outputs

        update = bool(self.results) and self.settings().update_baselines
        gpu = self.settings().device.gpu if self.results else ""
        self.written_baselines, self.write_failures = write_session_outputs(
            self.results, self._report_path(), update=update, gpu=gpu)
        max_size = _get(self.config, CACHE_MAX_SIZE)
        if self.results and max_size is not None:
            from pytest_trtbench.cache_admin import prune

            removed = prune(self.settings().cache_dir, max_size=max_size)
            self.pruned = (len(removed), sum(e.bytes for e in removed))
        if self.write_failures and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.is_worker:
            return
        for line in self.cache_notes:
            terminalreporter.write_line(f"trtbench: {line}", yellow=True)
        for line in self.write_failures:
            terminalreporter.write_line(f"trtbench error: {line}", red=True, bold=True)
        if not self.results:
            return
        from pytest_trtbench.report import counts, text_table

        tr = terminalreporter
        tr.write_sep("=", "trtbench summary")
        if self.config.get_verbosity() >= 0:
            for line in text_table(self.rows()):
                tr.write_line(line)
        rows = self.rows()
        built: dict[str, float] = {}
        for r in (r for r in rows if r["engine_cache"] == "built"):
            keys = str(r["engine_key"]).split(",")  # a fuzz row over several profiles names each engine
            for key in keys:
                built.setdefault(key, float(r["build_s"]) / len(keys))
        hits = {key for r in rows if r["engine_cache"] == "hit" for key in str(r["engine_key"]).split(",")}
        tr.write_line(f"engines: {len(built)} built ({sum(built.values()):.1f} s), {len(hits)} cache hit(s)")
        tr.write_line("verdicts: " + ", ".join(f"{k} {v}" for k, v in sorted(counts(rows).items())))
        for path in self.written_baselines:
            tr.write_line(f"baselines written: {path}")
        if not self.settings().update_baselines:
            from pytest_trtbench.session_outputs import unused_baselines_warning

            warning = unused_baselines_warning(rows, self.settings().baseline_dir, self.settings().device.gpu)
            if warning:
                tr.write_sep("!", "trtbench: no baselines used", red=True, bold=True)
                tr.write_line(f"WARNING: {warning}", red=True, bold=True)
        self._summary_locations(tr, rows)

    def _summary_locations(self, tr: Any, rows: list[dict[str, Any]]) -> None:
        from pytest_trtbench.anchor import location_lines

        settings = self.settings()
        for text, warn in location_lines(settings.baseline_dir / settings.device.gpu, self.anchor_why,
                                         settings.cache_dir, self.pruned, rows, self.suite_files):
            tr.write_line(text, yellow=warn, bold=warn)


@pytest.fixture(scope="session")
def trtbench(pytestconfig: pytest.Config) -> Harness:
    """The session's harness: ``trtbench.engine(case)``, ``.inputs(case)``, ``.reference(case)``, ``.run_case(case)``."""
    return pytestconfig.stash[plugin_key].harness()


@pytest.fixture(scope="session")  # stateless; session scope lets Hypothesis' @given tests use it
def trt_check() -> Callable[..., None]:
    """``trt_check(actual, expected, precision="fp32", tolerance=None)``: assert outputs match, with statistics."""
    from pytest_trtbench.compare import Tolerance, compare_outputs

    def check(actual: Any, expected: Any, precision: str = "fp32", tolerance: Tolerance | None = None,
              classifier_outputs: tuple[str, ...] = ()) -> None:
        __tracebackhide__ = True
        tol = tolerance or Tolerance.default_for(precision)
        results = compare_outputs(actual, expected, lambda name: tol, classifier_outputs)
        failed = [r for r in results if not r.passed]
        if failed:
            lines = [f"{len(failed)} of {len(results)} outputs differ ({precision}, {tol}):"]
            for r in failed:
                lines.append(f"  {r.name}: " + "; ".join(r.failures) +
                             f" (max rel err {r.max_rel_err:.3g}, cosine {r.cosine_similarity:.6f})")
            pytest.fail("\n".join(lines), pytrace=False)

    return check
