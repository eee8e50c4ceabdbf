"""The backend protocol: build an engine into a cache directory, load it, run it.

A backend never decides verdicts, never writes baselines and never times anything itself:
it builds files, loads them, and hands out a :class:`Launch` that the measurement code times.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Protocol

from pytest_trtbench.device import DeviceInfo
from pytest_trtbench.profile import ShapeProfile

if TYPE_CHECKING:
    import numpy as np


class BackendError(Exception):
    """A build or run failed for a reason the user can act on; the message says which and how."""


@dataclass(frozen=True)
class BuildRequest:
    """Everything an engine build depends on. Every field that changes the engine is in the cache key."""

    onnx_path: Path
    """The fp32 source model (a user's ONNX file or the export of a PyTorch factory)."""
    precision: str
    """``fp32``, ``tf32``, ``fp16``, ``bf16``, ``int8`` or ``fp8``."""
    profiles: tuple[ShapeProfile, ...]
    """One or more optimization profiles; cases pick the first profile that contains their shapes."""
    device: DeviceInfo
    calibration: Callable[[], Iterable[Mapping[str, np.ndarray]]] | None = None
    """Yields calibration feeds for int8 (seeded, so a rebuild sees the same data)."""
    options: Mapping[str, Any] = field(default_factory=dict)
    """The build options this backend declared and the user set, parsed (e.g. ``opt_level``, ``workspace_mib``),
    plus ``fp32_ops`` (ops kept in fp32, from the suite); JSON-able."""
    cuda: str = "auto"
    """``--trt-cuda``: the CUDA layer (:mod:`pytest_trtbench.cuda`) a loaded engine runs and is timed
    through on a GPU. Not part of the cache key: it changes how an engine is driven, not the engine."""


@dataclass(frozen=True)
class BuildOption:
    """One engine build option a backend accepts (``Backend.build_options``).

    Users set it with ``--trt-build-option NAME=VALUE`` (ini ``trt_build_option``) or
    ``Suite(build_options={NAME: value})``; the backend's build reads it from ``BuildRequest.options``,
    already parsed. Only the options a backend declares reach its requests and its cache keys.
    """

    name: str
    parse: Callable[[Any], Any]
    """Text (from the command line or ini) or a Python value (from a suite) -> the typed value; raises
    ``ValueError`` naming the rule broken (:func:`pytest_trtbench.build_options.int_in` / ``one_of`` help)."""
    default: Any = None
    """What the backend does when the option is not given (documentation; never added to the request, so an
    unset option keeps the cache key it had)."""
    doc: str = ""


@dataclass
class BuildOutput:
    """What :meth:`Backend.build` wrote: file names relative to the entry directory, plus metadata."""

    files: list[str]
    metadata: dict[str, Any] = field(default_factory=dict)
    """JSON-able facts stored in the cache sidecar (e.g. ``engine_precisions``, layer info)."""


class Launch(Protocol):
    """One prepared inference: inputs already in place, so calling it only launches work.

    On CPU ``__call__`` runs synchronously and ``cuda_stream`` is ``None``. On a GPU it enqueues
    on ``cuda_stream`` (a CUDA-layer :class:`pytest_trtbench.cuda.layer.Stream`, whose layer's events time it;
    a plain ``torch.cuda.Stream`` is still accepted and timed by the torch layer), and ``synchronize`` waits for it.

    Optional, looked up with ``getattr`` by :mod:`pytest_trtbench.measure`:

    - ``capture_graph() -> Callable[[], None] | str``: capture one launch into a CUDA graph and
      return a callable that replays it on ``cuda_stream``, or a sentence saying why it cannot be
      captured (raising :class:`BackendError` or ``RuntimeError`` counts as such a sentence).
      Called after warmup; the replay must keep using the launch's input and output memory.
    - ``host_synchronous: bool``: ``True`` when the call itself waits for the GPU (ONNX Runtime's
      ``run_with_iobinding``), so its host time is not an enqueue time.
    """

    cuda_stream: Any

    def __call__(self) -> None: ...

    def synchronize(self) -> None: ...


class Engine(Protocol):
    """A loaded engine."""

    input_names: list[str]
    output_names: list[str]

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run once and return host copies of every output."""
        ...

    def prepare(self, feeds: Mapping[str, np.ndarray]) -> Launch:
        """Stage *feeds* (host-to-device copies, shapes) once, for timing."""
        ...

    def close(self) -> None: ...

    # Optional, looked up with ``getattr`` by :func:`pytest_trtbench.layer_profile.capture`:
    # ``layer_profile(feeds, runs) -> LayerProfile``: per-layer times from a profiled session / context that is
    # not the timed one (ONNX Runtime: ``backends/ort_profile.py``; TensorRT: ``backends/tensorrt/profiler.py``).


class Backend(Protocol):
    """Builds and loads engines of one kind (ONNX Runtime, TensorRT, ...).

    Optional, looked up with ``getattr`` by :mod:`pytest_trtbench.build_options`:

    - ``build_options: Sequence[BuildOption]``: the build options it accepts (``--trt-build-option``,
      ``Suite(build_options=...)``); its requests carry only these, parsed, so they alone enter its cache
      key. A backend without it accepts none.
    """

    name: str

    def unsupported_reason(self, precision: str, device: DeviceInfo) -> str | None:
        """``None`` if this backend can build *precision* for *device*; else why not (a skip reason)."""
        ...

    def execution_unavailable_reason(self, device: DeviceInfo) -> str | None:
        """``None`` if built engines can run here; else why not (the case is reported ``built``)."""
        ...

    def cache_identity(self, request: BuildRequest) -> dict[str, str]:
        """Library flavor/version and options that change the engine; goes into the cache key."""
        ...

    def build(self, request: BuildRequest, out_dir: Path, cache_root: Path) -> BuildOutput:
        """Build into *out_dir* (a private temporary directory; the cache renames it into place).

        *cache_root* is the cache directory of this GPU namespace, for state shared between
        builds (TensorRT's timing cache); the backend locks what it writes there.
        """
        ...

    def verify(self, entry_dir: Path, metadata: Mapping[str, Any]) -> None:
        """Cheaply check a cached entry without executing anything (used where engines can't run).
        Raise :class:`BackendError` if the files are unusable, so the cache rebuilds them."""
        ...

    def load(self, entry_dir: Path, metadata: Mapping[str, Any], request: BuildRequest) -> Engine:
        """Load a cached entry. Raise :class:`BackendError` if the files are unreadable."""
        ...
