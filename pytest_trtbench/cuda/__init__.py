"""The CUDA layer: one interface (:mod:`.layer`) on torch, cuda-python or pycuda, chosen by :mod:`.select`."""
from __future__ import annotations

from pytest_trtbench.cuda.layer import CudaLayer, CudaLayerError, DeviceBuffer, Event, Graph, Stream
from pytest_trtbench.cuda.select import AUTO, LAYERS, OPTION, choose, cuda_layer, parse_layer, unavailable_reason

__all__ = ["AUTO", "LAYERS", "OPTION", "CudaLayer", "CudaLayerError", "DeviceBuffer", "Event", "Graph", "Stream",
           "choose", "cuda_layer", "parse_layer", "unavailable_reason"]
