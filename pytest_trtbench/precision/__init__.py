"""Precisions: the one list of names, and how each is produced from the fp32 model.

- :mod:`.quantize`: int8 as an explicitly quantized (Q/DQ) ONNX model, calibrated with ONNX Runtime.
- :mod:`.convert`: fp16 / bf16 as an ONNX model whose float compute is in that type.
- :mod:`.prepare`: what every backend calls at the start of ``build`` to get the model it compiles.

This module is imported at plugin import (suites validate their precisions against it): it is
plain data, no heavy import.
"""
from __future__ import annotations

from typing import Any

PRECISIONS = ("fp32", "tf32", "fp16", "bf16", "int8", "fp8")
"""Every precision a suite may ask for, in report order."""
REDUCED_PRECISIONS = ("fp16", "bf16", "int8", "fp8")
"""Precisions an engine must really compute in: a build that realizes none of it is an error."""
FLOAT_CONVERSIONS = ("fp16", "bf16")
"""Reduced float precisions a model can be rewritten to (:mod:`.convert`)."""
CALIBRATED = ("int8", "fp8")
"""Precisions whose build needs calibration feeds."""


def recipe(precision: str, calibration_method: str = "minmax") -> dict[str, Any]:
    """How *precision* is produced from the fp32 model (quantization / conversion recipe and version).

    Part of the engine cache key (:func:`pytest_trtbench.cache.key_fields`): changing a recipe
    rebuilds engines instead of serving stale ones. The values are unchanged from when this lived
    in ``cache.py``, so existing cache entries keep their keys; *calibration_method* (``Suite.calibration_method``,
    reaching backends as the build option ``calibration_method`` when it is not ``minmax``) replaces the recipe's
    ``calibration``.
    """
    if precision in CALIBRATED:
        from pytest_trtbench.precision.quantize import recipe_for

        return recipe_for(calibration_method)
    if precision in FLOAT_CONVERSIONS:
        from pytest_trtbench.precision.convert import RECIPE_VERSION

        return {"conversion": RECIPE_VERSION}
    return {}


__all__ = ["CALIBRATED", "FLOAT_CONVERSIONS", "PRECISIONS", "REDUCED_PRECISIONS", "recipe"]
