"""GPU telemetry around a case's timed blocks: clocks, temperature, power and energy (NVML).

Latency means little without the state of the GPU it was measured in: a GPU that boosted at the
start and throttled by the end, or ran hot, measures a different machine than its baseline did.
:func:`open_gpu_monitor` reads NVML (``pynvml``, from the ``nvidia-ml-py`` package) before and after
the timed blocks; the difference of the total-energy counter gives joules per inference.

Energy needs a window of its own: NVML refreshes the energy counter only every ~100 ms on an
H200 (measured), while the timed blocks last ~0.1 s by default. :meth:`GpuMonitor.energy_window`
therefore runs the launch back to back for ``energy_s`` seconds (1 s by default,
``--trt-energy-s``) between two *ticks* of the counter, counting completed launches.

Everything here is optional: without ``pynvml``, without an NVIDIA driver, or on a GPU that lacks a
counter, the functions return ``None`` (or leave the field ``None``) and never raise. ``pynvml`` is
imported lazily, on the first GPU measurement, never by the plugin module.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, Callable

#: An SM clock that moved more than this (relative) between the start and the end of the timed
#: blocks means the clocks were not stable: boost decayed, or power / thermal capping set in.
CLOCK_DRIFT_LIMIT = 0.05
#: GPU temperature (deg C) above which a note warns of thermal throttling, when NVML reports no
#: slowdown threshold of its own.
HOT_GPU_C = 85.0


@dataclass(frozen=True)
class GpuSnapshot:
    """One reading of the GPU's state; a field is ``None`` where the GPU or driver lacks it."""

    time_s: float
    sm_clock_mhz: float | None
    mem_clock_mhz: float | None
    temperature_c: float | None
    power_w: float | None
    energy_mj: float | None
    """NVML's total energy counter since the driver loaded, millijoules (Volta and newer)."""


@dataclass(frozen=True)
class EnergyWindow:
    """Energy counted between two ticks of NVML's counter while the launch ran back to back."""

    joules: float
    seconds: float
    launches: int


@dataclass(frozen=True)
class TelemetrySummary:
    """The GPU's state at the start and end of the timed blocks, and the energy per launch."""

    start: GpuSnapshot
    end: GpuSnapshot
    energy: EnergyWindow | None = None
    slowdown_temp_c: float | None = None

    @property
    def window_s(self) -> float:
        return self.end.time_s - self.start.time_s

    @property
    def energy_j_per_inference(self) -> float | None:
        """Joules per launch (one inference of the whole batch)."""
        e = self.energy
        return e.joules / e.launches if e is not None and e.launches > 0 and e.joules > 0 else None

    @property
    def mean_power_w(self) -> float | None:
        e = self.energy
        return e.joules / e.seconds if e is not None and e.seconds > 0 and e.joules > 0 else None

    def notes(self) -> list[str]:
        """Warnings a reader of the latency should see: clocks that moved, a hot GPU, coarse energy."""
        out: list[str] = []
        s0, s1 = self.start.sm_clock_mhz, self.end.sm_clock_mhz
        if s0 and s1 and abs(s1 / s0 - 1.0) > CLOCK_DRIFT_LIMIT:
            out.append(
                f"GPU SM clock moved {s0:.0f} -> {s1:.0f} MHz ({100 * (s1 / s0 - 1):+.1f} %) during timing: "
                "boost or power/thermal capping changed the speed; lock clocks (sudo nvidia-smi -lgc <MHz>)"
            )
        hot = self.slowdown_temp_c - 5.0 if self.slowdown_temp_c else HOT_GPU_C
        if self.end.temperature_c is not None and self.end.temperature_c > hot:
            out.append(
                f"GPU at {self.end.temperature_c:.0f} C after timing (warning above {hot:.0f} C): "
                "it may be thermally throttled; check cooling or the clock-event reasons in nvidia-smi -q"
            )
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "energy_j_per_inference": self.energy_j_per_inference,
            "mean_power_w": self.mean_power_w,
            "gpu_clock_mhz_start": self.start.sm_clock_mhz,
            "gpu_clock_mhz_end": self.end.sm_clock_mhz,
            "gpu_mem_clock_mhz_end": self.end.mem_clock_mhz,
            "gpu_temp_c_start": self.start.temperature_c,
            "gpu_temp_c_end": self.end.temperature_c,
            "gpu_power_w_start": self.start.power_w,
            "gpu_power_w_end": self.end.power_w,
            "energy_window_s": self.energy.seconds if self.energy else None,
        }


class GpuMonitor:
    """Reads one GPU through NVML. Create with :func:`open_gpu_monitor`."""

    def __init__(self, nvml: Any, handle: Any) -> None:
        self._nvml = nvml
        self._handle = handle
        self.slowdown_temp_c = self._read(
            lambda: float(nvml.nvmlDeviceGetTemperatureThreshold(handle, nvml.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN))
        )

    def _read(self, getter: Callable[[], float]) -> float | None:
        try:
            return getter()
        except self._nvml.NVMLError:  # NOT_SUPPORTED on this GPU, or the driver went away
            return None

    def snapshot(self) -> GpuSnapshot:
        nvml, h = self._nvml, self._handle
        return GpuSnapshot(
            time_s=time.perf_counter(),
            sm_clock_mhz=self._read(lambda: float(nvml.nvmlDeviceGetClockInfo(h, nvml.NVML_CLOCK_SM))),
            mem_clock_mhz=self._read(lambda: float(nvml.nvmlDeviceGetClockInfo(h, nvml.NVML_CLOCK_MEM))),
            temperature_c=self._read(lambda: float(nvml.nvmlDeviceGetTemperature(h, nvml.NVML_TEMPERATURE_GPU))),
            power_w=self._read(lambda: nvml.nvmlDeviceGetPowerUsage(h) / 1000.0),
            energy_mj=self._read(lambda: float(nvml.nvmlDeviceGetTotalEnergyConsumption(h))),
        )

    def energy_mj(self) -> float | None:
        return self._read(lambda: float(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)))

    def energy_window(self, call: Callable[[], None], sync: Callable[[], None], seconds: float,
                      tick_timeout_s: float = 0.5) -> EnergyWindow | None:
        """Run ``call(); sync()`` back to back for about *seconds*, from one counter tick to another.

        Returns ``None`` without an energy counter, for ``seconds <= 0``, or when the counter does
        not tick within *tick_timeout_s* (a GPU whose counter is frozen).
        """
        if seconds <= 0 or self.energy_mj() is None:
            return None

        def run_to_tick() -> tuple[float, float, int] | None:
            first, n, t0 = self.energy_mj(), 0, time.perf_counter()
            while True:
                call()
                sync()
                n += 1
                now, value = time.perf_counter(), self.energy_mj()
                if value is not None and first is not None and value != first:
                    return value, now, n
                if now - t0 > tick_timeout_s:
                    return None

        begin = run_to_tick()
        if begin is None:
            return None
        e0, t0, _ = begin
        launches = 0
        while time.perf_counter() - t0 < seconds:
            call()
            sync()
            launches += 1
        end = run_to_tick()
        if end is None:
            return None
        e1, t1, tail = end
        return EnergyWindow((e1 - e0) / 1000.0, t1 - t0, launches + tail)

    def summarize(self, start: GpuSnapshot, end: GpuSnapshot, energy: EnergyWindow | None = None) -> TelemetrySummary:
        return TelemetrySummary(start, end, energy, self.slowdown_temp_c)


_initialized: list[Any] = []  # the pynvml module once nvmlInit succeeded (NVML is process-global)


def _nvml() -> Any | None:
    if _initialized:
        return _initialized[0]
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:  # no driver / libnvidia-ml.so here
        return None
    _initialized.append(pynvml)
    return pynvml


def cuda_device_identity(cuda_index: int | None = None) -> tuple[str | None, int]:
    """The UUID (``GPU-...``, when torch knows it) and CUDA index of the device in use.

    torch reports the device's UUID, which NVML looks up regardless of ``CUDA_VISIBLE_DEVICES``
    and ``CUDA_DEVICE_ORDER``; without it, :func:`nvml_index` maps the CUDA index.
    """
    try:
        import torch
    except ImportError:
        return None, cuda_index or 0
    if not torch.cuda.is_available():
        return None, cuda_index or 0
    index = torch.cuda.current_device() if cuda_index is None else cuda_index
    uuid = getattr(torch.cuda.get_device_properties(index), "uuid", None)
    if uuid is None:
        return None, index
    text = str(uuid)
    return (text if text.startswith(("GPU-", "MIG-")) else f"GPU-{text}"), index


def nvml_index(cuda_index: int, visible: str | None = None) -> int:
    """The NVML index of CUDA device *cuda_index*: NVML sees every GPU, CUDA only the visible ones.

    Assumes ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` order when ``CUDA_VISIBLE_DEVICES`` lists indices
    (the UUID route of :func:`open_gpu_monitor` needs no such assumption).
    """
    visible = os.environ.get("CUDA_VISIBLE_DEVICES") if visible is None else visible
    if not visible:
        return cuda_index
    entries = [e.strip() for e in visible.split(",") if e.strip()]
    if cuda_index < len(entries) and entries[cuda_index].isdigit():
        return int(entries[cuda_index])
    return cuda_index


def open_gpu_monitor(cuda_index: int | None = None) -> GpuMonitor | None:
    """A monitor of the CUDA device in use (or *cuda_index*), or ``None`` where NVML cannot read it."""
    nvml = _nvml()
    if nvml is None:
        return None
    uuid, index = cuda_device_identity(cuda_index)
    try:
        if uuid is not None:
            try:
                handle = nvml.nvmlDeviceGetHandleByUUID(uuid)
            except nvml.NVMLError:
                handle = nvml.nvmlDeviceGetHandleByIndex(nvml_index(index))
        else:
            handle = nvml.nvmlDeviceGetHandleByIndex(nvml_index(index))
    except nvml.NVMLError:
        return None
    return GpuMonitor(nvml, handle)
