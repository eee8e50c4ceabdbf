"""Random-input vs real-data int8 calibration, measured on the shipped digits suite's task metric (top-1).

    python benchmarks/calibration_sources.py [--provider cpu|cuda] [--out benchmarks/results/calibration_sources_cpu.md]

Trains the digits classifier exactly as ``suites/test_digits.py`` does (seeded, deterministic), exports it like the
plugin (opset 17, dynamic batch), then for each calibration source x each calibration method writes the int8 Q/DQ
model with the plugin's own recipe (:func:`pytest_trtbench.precision.quantize.quantize_qdq`) and measures top-1 on
the 600 evaluation images with ONNX Runtime (CPU, or the CUDA provider with ``--provider cuda``). Sources:

- ``data``: the suite's calibration part (256 real training images), what the suite uses;
- ``random [0, 1]``: the plugin's default without data: 8 seeded random batches of 4 drawn from the Input's range;
- ``random [-1, 1]``: the same with Input's default range (a suite that didn't state its inputs' range);
- ``one class``: 96 training images of the digit 1 only;
- ``wrong scale``: the 256 images preprocessed as /255 instead of /16 (a preprocessing mismatch).

A second table does the same for the synthetic anomaly detector of ``tests/test_task_suites.py`` (16 features,
class 1 inputs 20x larger than class 0 ones), where the calibration data does matter: ``data`` (both classes),
``random [-1, 1]`` (the plugin's default feeds) and ``one class`` (normal samples only).

Prints markdown tables (with machine, command, date) and writes them to ``--out``. No timing is involved.
"""
from __future__ import annotations

import argparse
import datetime
import importlib.util
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from pytest_trtbench import Input, Suite  # noqa: E402
from pytest_trtbench.inputs import calibration_feeds  # noqa: E402
from pytest_trtbench.precision.quantize import CALIBRATION_METHODS, quantize_qdq  # noqa: E402

METHODS = list(CALIBRATION_METHODS)


def digits_suite_module() -> Any:
    spec = importlib.util.spec_from_file_location("digits_suite", REPO / "suites" / "test_digits.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sources(digits: Any) -> dict[str, list[dict[str, np.ndarray]]]:
    images, labels = digits.digits()
    train = images[: digits.TRAIN]
    real = [{"image": x} for x, _ in digits.batches(0, digits.CALIBRATION)]

    def seeded(low: float, high: float) -> list[dict[str, np.ndarray]]:
        suite = Suite(model=digits.digits_classifier, inputs=[Input("image", ("batch", 64), range=(low, high))])
        return [dict(f) for f in calibration_feeds(suite, {"image": (4, 64)})]   # the plugin's default: 8 x batch 4

    ones = train[labels[: digits.TRAIN] == 1][:96]
    return {
        "data (256 real images)": real,
        "random [0, 1] (plugin default, Input range stated)": seeded(0.0, 1.0),
        "random [-1, 1] (plugin default, Input range not stated)": seeded(-1.0, 1.0),
        "one class (96 images of the digit 1)": [{"image": ones[i:i + 32]} for i in range(0, len(ones), 32)],
        "wrong scale (real images /255 instead of /16)": [{"image": f["image"] * 16.0 / 255.0} for f in real],
    }


def top1(path: Path, images: np.ndarray, labels: np.ndarray, provider: str, input_name: str = "image") -> float:
    import onnxruntime as ort

    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if provider == "cuda" else ["CPUExecutionProvider"]
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=providers)
    if provider == "cuda" and session.get_providers()[0] != "CUDAExecutionProvider":
        raise SystemExit(f"CUDA provider not available: {session.get_providers()}")
    logits = np.concatenate([session.run(None, {input_name: images[i:i + 100]})[0] for i in range(0, len(images), 100)])
    return float(np.mean(logits.argmax(axis=1) == labels))


def export(module: Any, path: Path, io: tuple[str, int] = ("image", 64)) -> None:
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.zeros(4, io[1]),), str(path), input_names=[io[0]], output_names=["logits"],
                          dynamic_axes={io[0]: {0: "batch"}}, opset_version=17, dynamo=False)


def detector_samples(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """tests/test_task_suites.py's anomaly data: class 1 inputs ~ N(0, 2^2), class 0 ~ N(0, 0.1^2)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=n)
    x = rng.normal(size=(n, 16)).astype(np.float32) * np.where(labels == 1, 2.0, 0.1)[:, None].astype(np.float32)
    return x, labels


def detector_rows(tmp: Path, provider: str) -> tuple[float, list[str]]:
    import torch
    from torch import nn

    torch.manual_seed(0)
    x, y = detector_samples(512, 0)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 2))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(60):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        optimizer.step()
    fp32 = tmp / "detector.onnx"
    export(model.eval(), fp32, ("x", 16))
    eval_x, eval_y = detector_samples(400, 2)
    reference = top1(fp32, eval_x, eval_y, provider, "x")
    cal_x, cal_y = detector_samples(256, 1)
    suite = Suite(model=lambda: model, inputs=[Input("x", ("batch", 16))])
    sets = {
        "data (256 samples, both classes)": [{"x": cal_x[i:i + 32]} for i in range(0, 256, 32)],
        "random [-1, 1] (plugin default)": [dict(f) for f in calibration_feeds(suite, {"x": (4, 16)})],
        "one class (normal samples only)": [{"x": cal_x[cal_y == 0][i:i + 32]} for i in range(0, 96, 32)],
    }
    return reference, [_row(name, feeds, fp32, tmp, eval_x, eval_y, reference, provider, "x")
                       for name, feeds in sets.items()]


def _row(name: str, feeds: list[dict[str, np.ndarray]], fp32: Path, tmp: Path, images: np.ndarray,
         labels: np.ndarray, reference: float, provider: str, input_name: str) -> str:
    cells = []
    for method in METHODS:
        int8 = tmp / f"int8-{method}.onnx"
        quantize_qdq(fp32, int8, feeds, method)
        value = top1(int8, images, labels, provider, input_name)
        cells.append(f"{100 * value:.2f} % ({100 * (reference - value) / reference:+.2f} %)")
    return f"| {name} | " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--provider", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--methods", nargs="+", choices=CALIBRATION_METHODS, default=list(CALIBRATION_METHODS),
                        help="entropy (a KL search over 2048 bins per tensor, in Python) takes ~8 s per model here")
    args = parser.parse_args()
    METHODS[:] = args.methods
    import onnxruntime as ort
    import torch

    started = time.perf_counter()
    digits = digits_suite_module()
    torch.manual_seed(0)                                   # the plugin seeds torch with the suite's seed (0)
    model = digits.digits_classifier().eval()
    images, labels = digits.digits()
    eval_x, eval_y = images[digits.TRAIN:], labels[digits.TRAIN:]
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "digits.onnx"
        export(model, fp32)
        reference = top1(fp32, eval_x, eval_y, args.provider)
        rows = [_row(name, feeds, fp32, Path(tmp), eval_x, eval_y, reference, args.provider, "image")
                for name, feeds in sources(digits).items()]
        detector_reference, detector = detector_rows(Path(tmp), args.provider)
    lines = [
        f"# int8 calibration sources on the digits suite ({args.provider})", "",
        f"- command: `python benchmarks/calibration_sources.py --provider {args.provider} --methods {' '.join(METHODS)}`",
        f"- date (UTC): {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M}",
        f"- machine: {platform.machine()}, {platform.processor() or platform.platform()}; onnxruntime "
        f"{ort.__version__}, torch {torch.__version__}",
        f"- fp32 top-1 on the {len(eval_y)} evaluation images: {100 * reference:.2f} %; each cell: int8 top-1 "
        "(relative loss vs fp32; the suite's budget is 1 %)", "",
        "| calibration set | " + " | ".join(METHODS) + " |", "|---|" + "---|" * len(METHODS), *rows, "",
        f"Synthetic anomaly detector (tests/test_task_suites.py), fp32 top-1 on 400 samples: "
        f"{100 * detector_reference:.2f} %", "",
        "| calibration set | " + " | ".join(METHODS) + " |", "|---|" + "---|" * len(METHODS), *detector, "",
        f"{time.perf_counter() - started:.1f} s in all.", "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
