import importlib

pytest_plugins = ["pytester"]

# pytester's in-process runs restore sys.modules afterwards; C extensions such as onnx's must not be
# imported a second time in one process, so import them once here, before any inner run.
for _name in ("numpy", "torch", "onnx", "onnxruntime", "onnxruntime.quantization", "pandas"):
    try:
        importlib.import_module(_name)
    except ImportError:
        pass
