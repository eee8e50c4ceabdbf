"""TensorRT data types as numpy dtypes (shared by the runtime; no build code, no torch needed)."""
from __future__ import annotations

from typing import Any

from pytest_trtbench.backends.base import BackendError

_NUMPY_NAMES = {
    "FLOAT": "float32", "HALF": "float16", "BF16": "uint16", "INT8": "int8", "INT32": "int32",
    "INT64": "int64", "BOOL": "bool", "UINT8": "uint8",
}
"""numpy has no bfloat16: BF16 tensors are held as their raw 16-bit words (``uint16``)."""


def numpy_dtype(dtype: Any) -> Any:
    """The numpy dtype holding a ``trt.DataType`` member's values; :class:`BackendError` for types we can't bind."""
    import numpy as np

    try:
        return np.dtype(_NUMPY_NAMES[dtype.name])
    except KeyError:
        raise BackendError(f"I/O tensors of type {dtype.name} are not supported") from None


def is_bf16(dtype: Any) -> bool:
    return str(getattr(dtype, "name", "")) == "BF16"


def bf16_to_float32(words: Any) -> Any:
    """bfloat16 values (raw ``uint16`` words) as float32: the upper half of a float32's bits."""
    import numpy as np

    return (words.astype(np.uint32) << 16).view(np.float32)
