"""Suite declarations as a user writes them: validation at collection (every problem in one message, build
options parsed, inputs taken from an ONNX file and checked), profile errors naming the suite (issue 18: these
survived mutation testing). The ONNX files are real, made with ``onnx.helper``."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from pytest_trtbench import Input, Suite
from pytest_trtbench.suite import SuiteError

onnx = pytest.importorskip("onnx")


def identity_model(path: Path, dtype: int | None = None, shape: tuple[Any, ...] = ("batch", 4), *,
                   inputs: bool = True) -> Path:
    from onnx import TensorProto, helper

    dtype = TensorProto.FLOAT if dtype is None else dtype
    if inputs:
        nodes = [helper.make_node("Identity", ["x"], ["y"])]
        graph_inputs = [helper.make_tensor_value_info("x", dtype, list(shape))]
    else:
        nodes = [helper.make_node("Constant", [], ["y"], value=helper.make_tensor("c", dtype, list(shape), [1.0]))]
        graph_inputs = []
    graph = helper.make_graph(nodes, "g", graph_inputs, [helper.make_tensor_value_info("y", dtype, list(shape))])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    return path


X = [Input("x", ("batch", 4))]


def test_every_problem_of_a_suite_is_listed_in_one_message() -> None:
    suite = Suite(model="m.onnx", inputs=X, batch_sizes=[0], precisions=["fp99"], name="s")
    with pytest.raises(SuiteError) as exc:
        suite.validate()
    assert str(exc.value) == ("unknown precision 'fp99'; choose from fp32, tf32, fp16, bf16, int8, fp8; "
                              "batch_sizes must be positive integers, got [0]")


def test_declared_inputs_are_checked_with_the_rest_before_any_file_is_read(tmp_path: Path) -> None:
    suite = Suite(model=str(tmp_path / "missing.onnx"), inputs=[Input("x", ("batch", "seq"), "uint16")], name="s")
    with pytest.raises(SuiteError) as exc:
        suite.validate()
    assert str(exc.value) == ("input 'x' uses dim 'seq' but the suite gives no values for it: add dims={'seq': [...]}; "
                              "input 'x': unknown dtype 'uint16'; choose from float32, float16, float64, int8, int16, "
                              "int32, int64, uint8, bool")


def test_a_pytorch_suite_without_inputs_is_told_to_declare_them() -> None:
    with pytest.raises(SuiteError) as exc:
        Suite(model=lambda: None, name="s").validate()
    assert str(exc.value) == "a PyTorch suite needs its inputs: inputs=[Input(name, shape), ...]"


def test_an_onnx_suite_takes_its_inputs_from_the_file(tmp_path: Path) -> None:
    suite = Suite(model=str(identity_model(tmp_path / "m.onnx")), name="s")
    suite.validate()
    assert [(i.name, i.shape, i.dtype) for i in suite.inputs] == [("x", ("batch", 4), "float32")]
    assert [c.param_id for c in suite.cases()] == ["onnxruntime-fp32-b1"]


def test_inputs_read_from_the_file_are_checked_too(tmp_path: Path) -> None:
    from onnx import TensorProto

    suite = Suite(model=str(identity_model(tmp_path / "m.onnx", TensorProto.UINT16)), name="s")
    with pytest.raises(SuiteError) as exc:
        suite.validate()
    assert str(exc.value) == ("input 'x': unknown dtype 'uint16'; choose from float32, float16, float64, int8, int16, "
                              "int32, int64, uint8, bool")


def test_every_problem_of_the_inputs_read_from_the_file_is_listed_in_one_message(tmp_path: Path) -> None:
    from onnx import TensorProto, helper

    ins = [helper.make_tensor_value_info("x", TensorProto.UINT16, ["batch", 4]),
           helper.make_tensor_value_info("z", TensorProto.UINT32, ["batch", 4])]
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"]), helper.make_node("Identity", ["z"], ["w"])],
                              "g", ins, [helper.make_tensor_value_info("y", TensorProto.UINT16, ["batch", 4]),
                                         helper.make_tensor_value_info("w", TensorProto.UINT32, ["batch", 4])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(tmp_path / "m.onnx"))
    with pytest.raises(SuiteError) as exc:
        Suite(model=str(tmp_path / "m.onnx"), name="s").validate()
    kinds = "choose from float32, float16, float64, int8, int16, int32, int64, uint8, bool"
    assert str(exc.value) == f"input 'x': unknown dtype 'uint16'; {kinds}; input 'z': unknown dtype 'uint32'; {kinds}"


def test_a_dim_the_file_sizes_minus_one_is_a_named_dim_that_needs_values(tmp_path: Path) -> None:
    from onnx import TensorProto

    # older exporters write -1 (or 0) for an unknown size: axis 0 is the batch, another axis gets a name
    suite = Suite(model=str(identity_model(tmp_path / "m.onnx", TensorProto.FLOAT, shape=(-1, -1))), name="s")
    with pytest.raises(SuiteError, match=r"x_dim1.*dims=\{'x_dim1': \[16\]\}"):
        suite.validate()
    fixed = Suite(model=str(tmp_path / "m.onnx"), name="s", dims={"x_dim1": [3]})
    fixed.validate()
    assert [(i.name, i.shape) for i in fixed.inputs] == [("x", ("batch", "x_dim1"))]


def test_an_onnx_file_without_inputs_is_named(tmp_path: Path) -> None:
    suite = Suite(model=str(identity_model(tmp_path / "c.onnx", shape=(1,), inputs=False)), name="s")
    with pytest.raises(SuiteError, match=r"^c\.onnx has no inputs: nothing to feed the model$"):
        suite.validate()


def test_a_relative_model_path_is_relative_to_the_suite_file(tmp_path: Path) -> None:
    src = str(tmp_path / "suites" / "test_m.py")
    assert Suite(model="models/m.onnx", source_file=src).onnx_path() == tmp_path / "suites" / "models" / "m.onnx"
    assert Suite(model=str(tmp_path / "abs.onnx"), source_file=src).onnx_path() == tmp_path / "abs.onnx"
    assert Suite(model="m.onnx").onnx_path() == Path("m.onnx")


@pytest.mark.parametrize(("name", "shown"), [("test_m", "test_m"), ("", "?")])
def test_a_bad_profile_names_the_suite_and_the_profile(name: str, shown: str) -> None:
    suite = Suite(model="m.onnx", inputs=X, profiles=[{"x": ((1, 4), (8, 4), (2, 4))}], name=name)
    with pytest.raises(SuiteError) as exc:
        suite.cases()
    assert str(exc.value) == (f"suite {shown}: bad profile {{'x': ((1, 4), (8, 4), (2, 4))}}: need min <= opt <= max "
                              "per dim, got (1, 4) (8, 4) (2, 4)")


def test_a_case_outside_every_profile_says_how_to_fix_it() -> None:
    suite = Suite(model="m.onnx", inputs=X, batch_sizes=[1, 16], profiles=[{"x": ((1, 4), (2, 4), (8, 4))}], name="s")
    with pytest.raises(SuiteError, match=re.escape(
            "suite s: shapes {'x': (16, 4)} lie in none of its profiles; widen a profile or drop that batch size / "
            "dim value") + "$"):
        suite.cases()
