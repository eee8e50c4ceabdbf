"""Resource metrics of an engine, next to its latency (what trtexec prints): file size, device memory,
cold start (load + first inference), host RSS growth.

The harness hands the engine cache a :class:`MeteredBackend`: its ``load`` is timed and bracketed by the
process's RSS and (on a GPU) the device memory in use (``cudaMemGetInfo`` through the CUDA layer); the engine
it returns is a :class:`MeteredEngine` that times its first ``run``. The case's
:class:`~pytest_trtbench.outcome.EngineInfo` gets the numbers (:func:`engine_resources`). Cases sharing an
engine report the same load (it happened once). ``cudaMemGetInfo`` counts every process on the device, so on a
shared GPU the device numbers include others' allocations made meanwhile.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

if TYPE_CHECKING:
    import numpy as np

    from pytest_trtbench.backends.base import Backend, BuildOutput, BuildRequest, Engine, Launch
    from pytest_trtbench.cache import CacheEntry
    from pytest_trtbench.device import DeviceInfo
    from pytest_trtbench.outcome import EngineInfo

NAN = math.nan


def rss_bytes() -> int:
    """The process's resident set size now (Linux ``/proc/self/statm``; peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


@dataclass
class LoadMetrics:
    load_s: float = NAN
    first_run_s: float = NAN
    host_rss_growth_bytes: float = NAN
    """RSS after the first inference minus RSS before the load."""
    device_memory_bytes: float = NAN
    """GPU: device memory in use after the first inference minus before the load (weights, activations,
    ORT's arena growth, TensorRT's context memory)."""
    engine_device_memory_bytes: float = NAN
    """What the engine declares it needs beyond its weights (TensorRT's context device memory)."""


class MeteredEngine:
    """An engine whose load was measured and whose first :meth:`run` is timed; otherwise the engine itself."""

    def __init__(self, engine: Engine, metrics: LoadMetrics, used: Callable[[], int] | None, rss0: int,
                 used0: int) -> None:
        self.inner = engine
        self.metrics = metrics
        self._used, self._rss0, self._used0 = used, rss0, used0
        self.input_names = engine.input_names
        self.output_names = engine.output_names

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if not math.isnan(self.metrics.first_run_s):
            return self.inner.run(feeds)
        start = time.perf_counter()
        out = self.inner.run(feeds)
        self.metrics.first_run_s = time.perf_counter() - start
        self.metrics.host_rss_growth_bytes = rss_bytes() - self._rss0
        if self._used is not None:
            self.metrics.device_memory_bytes = self._used() - self._used0
        return out

    def prepare(self, feeds: Mapping[str, np.ndarray]) -> Launch:
        return self.inner.prepare(feeds)

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:  # a backend's own engine API (cuda_graph, device_memory, ...)
        return getattr(self.inner, name)


class MeteredBackend:
    """*backend* with :meth:`load` measured (see the module doc); every other member is the backend's."""

    def __init__(self, backend: Backend, device: DeviceInfo, cuda: str) -> None:
        self.inner = backend
        self.name = backend.name
        self._device, self._cuda = device, cuda

    def unsupported_reason(self, precision: str, device: DeviceInfo) -> str | None:
        return self.inner.unsupported_reason(precision, device)

    def execution_unavailable_reason(self, device: DeviceInfo) -> str | None:
        return self.inner.execution_unavailable_reason(device)

    def cache_identity(self, request: BuildRequest) -> dict[str, str]:
        return self.inner.cache_identity(request)

    def build(self, request: BuildRequest, out_dir: Path, cache_root: Path) -> BuildOutput:
        return self.inner.build(request, out_dir, cache_root)

    def verify(self, entry_dir: Path, metadata: Mapping[str, Any]) -> None:
        self.inner.verify(entry_dir, metadata)

    def _used(self) -> Callable[[], int] | None:
        if not self._device.has_cuda:
            return None
        from pytest_trtbench.cuda import CudaLayerError, cuda_layer

        try:
            return cuda_layer(self._cuda).used_bytes
        except CudaLayerError:
            return None  # the backend's load reports the layer problem itself

    def load(self, entry_dir: Path, metadata: Mapping[str, Any], request: BuildRequest) -> MeteredEngine:
        used = self._used()
        rss0, used0 = rss_bytes(), used() if used is not None else 0
        start = time.perf_counter()
        engine = self.inner.load(entry_dir, metadata, request)
        metrics = LoadMetrics(load_s=time.perf_counter() - start)
        declared = getattr(engine, "device_memory", None)  # TensorRT: its contexts' device memory
        if isinstance(declared, Mapping) and "device_memory_bytes" in declared:
            metrics.engine_device_memory_bytes = float(declared["device_memory_bytes"])
        return MeteredEngine(engine, metrics, used, rss0, used0)


def engine_resources(info: EngineInfo, entry: CacheEntry, engine: Any) -> EngineInfo:
    """*info* with the entry's file size and, where *engine* was metered, its load metrics."""
    sizes = entry.metadata.get("bytes") or {}
    file_bytes = float(sum(v for v in sizes.values() if isinstance(v, (int, float)))) if sizes else NAN
    metrics = getattr(engine, "metrics", None)
    if not isinstance(metrics, LoadMetrics):
        return replace(info, file_bytes=file_bytes)
    cold = metrics.load_s + metrics.first_run_s
    return replace(info, file_bytes=file_bytes, load_s=metrics.load_s, cold_start_s=cold,
                   device_memory_bytes=metrics.device_memory_bytes,
                   engine_device_memory_bytes=metrics.engine_device_memory_bytes,
                   host_rss_growth_bytes=metrics.host_rss_growth_bytes)
