"""TensorRT data types as torch dtypes (shared by the runtime; no build code needed)."""
from __future__ import annotations

from typing import Any

from pytest_trtbench.backends.base import BackendError

_TORCH_NAMES = {
    "FLOAT": "float32", "HALF": "float16", "BF16": "bfloat16", "INT8": "int8", "INT32": "int32",
    "INT64": "int64", "BOOL": "bool", "UINT8": "uint8",
}


def torch_dtype(dtype: Any) -> Any:
    """The torch dtype of a ``trt.DataType`` member; :class:`BackendError` for types we can't bind."""
    import torch

    try:
        return getattr(torch, _TORCH_NAMES[dtype.name])
    except KeyError:
        raise BackendError(f"I/O tensors of type {dtype.name} are not supported") from None
