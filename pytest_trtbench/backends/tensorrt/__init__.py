"""The TensorRT backend (TensorRT 10/11 and TensorRT-RTX), split the way Polygraphy splits it.

- :mod:`.flavor`: which library is installed and what it can do (every version difference).
- :mod:`.build`: the model to parse, parse, optimization profiles, builder config.
- :mod:`.timing_cache`: the timing cache file shared by builds of one GPU namespace.
- :mod:`.layers`: engine layer information (builder log or inspector) and realized precisions.
- :mod:`.runtime`: deserialize, contexts, bind, enqueue, CUDA graphs.
- :mod:`.dtypes`, :mod:`.logger`: TensorRT data types as numpy dtypes; a recording logger.
- :mod:`.backend`: :class:`TensorRTBackend`, the :class:`~pytest_trtbench.backends.base.Backend`.

Nothing heavy is imported here: the library and the CUDA layer are imported inside the functions that need them.
"""
from __future__ import annotations

from pytest_trtbench.backends.tensorrt.backend import TensorRTBackend
from pytest_trtbench.backends.tensorrt.build import ENGINE_FILE
from pytest_trtbench.backends.tensorrt.flavor import NOT_INSTALLED, TensorRTFlavor, detect_flavor
from pytest_trtbench.backends.tensorrt.runtime import CudaGraphLaunch, TensorRTEngine, TensorRTLaunch
from pytest_trtbench.backends.tensorrt.timing_cache import TIMING_CACHE_FILE, TimingCacheFile
from pytest_trtbench.precision import PRECISIONS

__all__ = [
    "ENGINE_FILE", "NOT_INSTALLED", "PRECISIONS", "TIMING_CACHE_FILE", "CudaGraphLaunch", "TensorRTBackend",
    "TensorRTEngine", "TensorRTFlavor", "TensorRTLaunch", "TimingCacheFile", "detect_flavor",
]
