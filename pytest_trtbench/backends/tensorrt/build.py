"""Engine builds: the model to parse (converted / quantized), parse, profiles, builder config, timing cache.

Nothing here executes an engine; TensorRT-RTX runs all of it on a CPU-only machine.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_trtbench.backends.base import BackendError, BuildOutput, BuildRequest
from pytest_trtbench.backends.tensorrt.flavor import TensorRTFlavor
from pytest_trtbench.backends.tensorrt.layers import count_engine_precisions, engine_layers, onnx_op_types
from pytest_trtbench.backends.tensorrt.logger import RecordingLogger
from pytest_trtbench.backends.tensorrt.timing_cache import TIMING_CACHE_FILE, TimingCacheFile
from pytest_trtbench.precision.prepare import prepare_model

ENGINE_FILE = "engine.plan"


def precision_mode(flavor: TensorRTFlavor, request: BuildRequest) -> str:
    """``strongly_typed`` (the model carries the types) or ``builder_flags`` (TensorRT 10 int8).

    fp16/bf16 are always strongly typed (a converted model): TensorRT 10's FP16/BF16 flags only
    *permit* half precision, and the builder may keep every layer of a small model in fp32, which
    the realized-precision check would then report as an error.
    """
    if request.precision in ("fp16", "bf16"):
        return "strongly_typed"
    return "strongly_typed" if flavor.strongly_typed_only else "builder_flags"


def build_engine(
    flavor: TensorRTFlavor, request: BuildRequest, out_dir: Path, cache_root: Path, *, can_execute: bool
) -> BuildOutput:
    """Build *request* into *out_dir*; *can_execute* says whether the engine inspector may load it here."""
    trt = flavor.module
    mode = precision_mode(flavor, request)
    prepared = prepare_model(request, out_dir, convert_floats=mode == "strongly_typed")
    model_path, files, metadata = prepared.path, prepared.files, dict(prepared.metadata)

    logger = RecordingLogger(trt)
    builder = trt.Builder(logger)
    network_flags = 0
    if mode == "strongly_typed" and not flavor.strongly_typed_only:
        network_flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(network_flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(model_path)):
        raise BackendError(parser_failure(parser, model_path, request.onnx_path, flavor))

    config = builder.create_builder_config()
    configure(flavor, builder, network, config, request, mode)
    timing_cache = TimingCacheFile(cache_root / TIMING_CACHE_FILE) if flavor.has_timing_cache else None
    if timing_cache is not None:
        timing_cache.attach(config)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        errors = "\n".join(logger.errors[-10:]) or "(no error was logged)"
        raise BackendError(f"{flavor.label} failed to build {request.onnx_path} ({request.precision}):\n{errors}")
    if timing_cache is not None:
        timing_cache.merge_and_save(config)

    engine_path = out_dir / ENGINE_FILE
    with open(engine_path, "wb") as f:
        f.write(serialized)
    layers, source = engine_layers(flavor, serialized, logger, can_execute=can_execute)
    metadata.update(
        flavor=flavor.module_name,
        version=flavor.version,
        precision_mode=mode,
        engine_bytes=engine_path.stat().st_size,
        layers=layers,
        layer_info_source=source,
        engine_precisions=count_engine_precisions(layers, onnx_op_types(model_path)),
        timing_cache=str(timing_cache.path) if timing_cache else f"not supported by {flavor.label}",
        profiles=[p.as_dict() for p in request.profiles],
        builder_config=applied_builder_config(flavor, config),
    )
    return BuildOutput(files=[*files, ENGINE_FILE], metadata=metadata)


def applied_builder_config(flavor: TensorRTFlavor, config: Any) -> dict[str, Any]:
    """The build options as the builder config holds them after :func:`configure` (read back, not echoed)."""
    trt = flavor.module
    applied: dict[str, Any] = {
        "opt_level": int(config.builder_optimization_level),
        "workspace_bytes": int(config.get_memory_pool_limit(trt.MemoryPoolType.WORKSPACE)),
    }
    if flavor.has_hardware_compat:
        applied["hardware_compat"] = str(config.hardware_compatibility_level.name).lower()
    return applied


def configure(
    flavor: TensorRTFlavor, builder: Any, network: Any, config: Any, request: BuildRequest, mode: str
) -> None:
    """Precision flags, optimization profiles and the user's builder options on *config*."""
    trt = flavor.module
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    set_precision(flavor, config, request.precision, mode)
    add_profiles(builder, network, config, request)
    if "workspace_mib" in request.options:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(request.options["workspace_mib"]) << 20)
    if "opt_level" in request.options:
        config.builder_optimization_level = int(request.options["opt_level"])
    if request.options.get("hardware_compat", "none") != "none":
        if not flavor.has_hardware_compat:
            raise BackendError(f"{flavor.label} has no hardware compatibility levels: drop build option hardware_compat")
        config.hardware_compatibility_level = hardware_compat_level(flavor, str(request.options["hardware_compat"]))
    if request.device.target_only:
        major, minor = request.device.compute_capability.split(".")
        config.num_compute_capabilities = 1
        config.set_compute_capability(trt.ComputeCapability.__members__[f"SM{major}{minor}"], 0)


def set_precision(flavor: TensorRTFlavor, config: Any, precision: str, mode: str) -> None:
    trt = flavor.module
    if flavor.has_tf32_flag:  # TensorRT enables TF32 by default: fp32 means fp32
        (config.set_flag if precision == "tf32" else config.clear_flag)(trt.BuilderFlag.TF32)
    if mode != "builder_flags":
        return
    if precision == "int8":  # explicit Q/DQ model; the flag is what TensorRT 10 weak typing expects
        config.set_flag(trt.BuilderFlag.INT8)


def hardware_compat_level(flavor: TensorRTFlavor, value: str) -> Any:
    """The ``HardwareCompatibilityLevel`` member called *value*, if this TensorRT version has it."""
    if value.lower() not in flavor.hardware_compat_levels:
        known = ", ".join(flavor.hardware_compat_levels) or "none"
        raise BackendError(f"hardware_compat {value!r} is not available in {flavor.label} (it has: {known})")
    return flavor.module.HardwareCompatibilityLevel.__members__[value.upper()]


def shape_tensor_inputs(network: Any) -> list[str]:
    """Inputs whose *values* set shapes (TensorRT keeps them on the host and needs profile values)."""
    return [network.get_input(i).name for i in range(network.num_inputs) if network.get_input(i).is_shape_tensor]


def add_profiles(builder: Any, network: Any, config: Any, request: BuildRequest) -> None:
    inputs = {network.get_input(i).name: tuple(network.get_input(i).shape) for i in range(network.num_inputs)}
    shape_tensors = shape_tensor_inputs(network) if inputs else []
    if shape_tensors:
        raise BackendError(
            f"input {shape_tensors[0]!r} of {request.onnx_path} is a shape tensor (its values set other tensors' "
            "shapes); TensorRT needs min/opt/max *values* for it, which suite profiles cannot give: make it a "
            "constant in the ONNX file"
        )
    for shape_profile in request.profiles:
        unknown = sorted(set(shape_profile.names()) - set(inputs))
        if unknown:
            raise BackendError(
                f"profile {shape_profile.label()} names {unknown}, which {request.onnx_path} has no input for "
                f"(inputs: {sorted(inputs)})"
            )
        profile = builder.create_optimization_profile()
        for name, shape in inputs.items():
            if name in shape_profile.names():
                r = shape_profile[name]
                profile.set_shape(name, r.min, r.opt, r.max)
            elif any(d < 0 for d in shape):
                raise BackendError(
                    f"input {name!r} of {request.onnx_path} has dynamic shape {list(shape)} but profile "
                    f"{shape_profile.label()} gives no min/opt/max for it"
                )
        config.add_optimization_profile(profile)


def parser_failure(parser: Any, parsed: Path, source: Path, flavor: TensorRTFlavor) -> str:
    lines = []
    for i in range(parser.num_errors):
        err = parser.get_error(i)
        node_name = err.node_name() if hasattr(err, "node_name") else ""
        op = err.node_operator() if hasattr(err, "node_operator") else ""
        where = f"node {node_name or '#' + str(err.node())!r} (op {op or '?'})" if err.node() >= 0 else "the model"
        lines.append(f"  {where}: {err.desc()}")
    file = str(source) if parsed == source else f"{source} (as converted: {parsed})"
    return f"{flavor.label} could not parse {file}:\n" + "\n".join(lines or ["  (no parser error recorded)"])
