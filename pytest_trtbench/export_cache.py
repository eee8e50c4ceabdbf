"""PyTorch-factory exports kept next to the engine cache, so a runner without torch can still run those suites.

A run with torch exports the factory's model (:func:`pytest_trtbench.model.export_onnx`) and stores a copy under
``<cache-dir>/exports/<suite>-<key>.onnx`` with a small JSON sidecar (output names). A run where torch can't be
imported uses that copy with no live reference: accuracy is gated against the baseline's golden fingerprints.

The key covers what this package can see of the model: the suite file's bytes, the suite's name, seed, inputs and
output names, the model size (``--trt-size``) and the ONNX opset. Code the factory imports from elsewhere is not
covered: after changing it, run once with torch (every run with torch exports afresh and replaces the copy).
Each pair is one cache entry for ``cache list|size|prune`` and ``--trt-cache-max-size`` (:mod:`pytest_trtbench.cache_admin`),
last used = the newer file's mtime: a store writes both, a use touches the sidecar.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_trtbench.suite import Suite

EXPORTS = "exports"
EXPORT_SUFFIX, SIDECAR_SUFFIX = ".onnx", ".json"


def export_key(suite: Suite, opset: int) -> str:
    """16 hex digits of SHA-256 over what the export depends on (see the module doc)."""
    from pytest_trtbench import model_size

    h = hashlib.sha256()
    try:
        h.update(Path(suite.source_file).read_bytes())
    except OSError:
        h.update(str(suite.source_file).encode())
    inputs = [(i.name, list(i.shape), i.dtype, list(i.range)) for i in suite.inputs]
    fields = {"name": suite.name, "seed": suite.seed, "inputs": inputs, "outputs": list(suite.output_names or []),
              "size": model_size(), "opset": opset}
    h.update(json.dumps(fields, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def _paths(root: Path, suite: Suite, opset: int) -> tuple[Path, Path]:
    stem = f"{suite.name}-{export_key(suite, opset)}"
    return root / (stem + EXPORT_SUFFIX), root / (stem + SIDECAR_SUFFIX)


def cached_export(root: Path, suite: Suite, opset: int) -> tuple[Path, list[str]] | None:
    """The stored export of *suite* and its output names, or ``None`` (none, or unreadable)."""
    model, sidecar = _paths(root, suite, opset)
    try:
        outputs = json.loads(sidecar.read_text(encoding="utf-8"))["output_names"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not model.is_file() or not isinstance(outputs, list):
        return None
    try:
        os.utime(sidecar)  # its last use, for the cache's LRU pruning
    except OSError:
        pass  # a read-only cache still serves it
    return model, [str(o) for o in outputs]


def store_export(root: Path, suite: Suite, opset: int, path: Path, output_names: list[str]) -> None:
    """Keep a copy of *path* (written by rename, the sidecar last, so a half-written copy is never used).
    Best effort: a cache dir that can't take it costs only the torch-free run its copy."""
    model, sidecar = _paths(root, suite, opset)
    try:
        root.mkdir(parents=True, exist_ok=True)
        for target, write in ((model, lambda f: shutil.copyfile(path, f)),
                              (sidecar, lambda f: Path(f).write_text(json.dumps({"output_names": output_names}),
                                                                    encoding="utf-8"))):
            fd, tmp = tempfile.mkstemp(prefix=".tmp-export-", dir=root)
            os.close(fd)
            try:
                write(tmp)
                os.replace(tmp, target)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
    except OSError:
        pass
