"""Reads a saved ``.mlpackage`` back into MIL: its spec, IO description and functions.

The program is loaded with coremltools' own proto reader,
``coremltools.converters.mil.frontend.milproto.load.load(model_spec,
specification_version, file_weights_dir)``, one function at a time (a copy of the
spec that holds only that function), so a multifunction package never holds two
programs' weights while it loads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from anechat.engines.errors import ModelFormatError
from anechat.engines.coreml.mil.quiet import import_coremltools

_DTYPES = {
    # Model_pb2.ArrayFeatureType.ArrayDataType
    65568: "fp32",
    65600: "fp64",
    65552: "fp16",
    131104: "int32",
    131080: "int8",
}


@dataclass
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    dtype: str
    #: every shape the input accepts (enumerated shapes); ``(shape,)`` when fixed
    shapes: tuple[tuple[int, ...], ...] = ()


@dataclass
class FunctionInfo:
    name: str  # the function's name inside the package ("main" for a single-function model)
    inputs: dict[str, TensorInfo] = field(default_factory=dict)
    outputs: dict[str, TensorInfo] = field(default_factory=dict)
    states: dict[str, TensorInfo] = field(default_factory=dict)


def _array_info(feature) -> TensorInfo:
    t = feature.type
    kind = t.WhichOneof("Type")
    if kind == "stateType":
        arr = t.stateType.arrayType
    elif kind == "multiArrayType":
        arr = t.multiArrayType
    else:
        return TensorInfo(feature.name, (), kind or "unknown")
    shape = tuple(int(s) for s in arr.shape)
    shapes: tuple[tuple[int, ...], ...] = (shape,)
    if arr.WhichOneof("ShapeFlexibility") == "enumeratedShapes":
        shapes = tuple(tuple(int(s) for s in es.shape) for es in arr.enumeratedShapes.shapes)
    return TensorInfo(feature.name, shape, _DTYPES.get(arr.dataType, str(arr.dataType)), shapes)


def _function_info(name: str, desc) -> FunctionInfo:
    return FunctionInfo(
        name=name,
        inputs={f.name: _array_info(f) for f in desc.input},
        outputs={f.name: _array_info(f) for f in desc.output},
        states={f.name: _array_info(f) for f in desc.state},
    )


def _model_file(package: Path) -> tuple[Path, Path]:
    """(model.mlmodel, weights folder) inside an .mlpackage, as its Manifest.json says."""
    data = package / "Data" / "com.apple.CoreML"
    manifest = package / "Manifest.json"
    model = data / "model.mlmodel"
    if manifest.is_file():
        try:
            m = json.loads(manifest.read_text(encoding="utf-8"))
            root = m["itemInfoEntries"][m["rootModelIdentifier"]]["path"]
            model = package / "Data" / root
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelFormatError(f"{manifest} is not a valid Core ML package manifest ({exc})") from exc
    if not model.is_file():
        raise ModelFormatError(f"{package} has no model spec (looked for {model.relative_to(package)})")
    return model, model.parent / "weights"


class MILPackage:
    """One ``.mlpackage`` on disk: its functions' IO and, on request, their MIL programs."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        if self.path.suffix == ".mlmodelc":
            raise ModelFormatError(
                f"{self.path.name} is a compiled Core ML model: the MIL executor reads .mlpackage parts only",
                hint="only Core ML on macOS runs .mlmodelc; convert the model with anechat to get .mlpackage parts",
            )
        if not self.path.is_dir():
            raise ModelFormatError(f"{self.path} is not a Core ML package folder")
        self.model_file, self.weights_dir = _model_file(self.path)
        import_coremltools()
        from coremltools.proto import Model_pb2

        spec = Model_pb2.Model()
        try:
            spec.ParseFromString(self.model_file.read_bytes())
        except Exception as exc:  # protobuf raises DecodeError
            raise ModelFormatError(f"{self.model_file} could not be parsed as a Core ML model ({exc})") from exc
        if spec.WhichOneof("Type") != "mlProgram":
            raise ModelFormatError(
                f"{self.path.name} is a {spec.WhichOneof('Type')} model: the MIL executor runs ML programs only"
            )
        self.spec = spec
        desc = spec.description
        if len(desc.functions):
            self.functions = {f.name: _function_info(f.name, f) for f in desc.functions}
            self.default_function = desc.defaultFunctionName or next(iter(self.functions))
        else:
            self.functions = {"main": _function_info("main", desc)}
            self.default_function = "main"

    def function(self, name: str | None = None) -> FunctionInfo:
        name = name or self.default_function
        if name not in self.functions:
            raise ModelFormatError(
                f"{self.path.name} has no function {name!r} (it has: {', '.join(self.functions)})"
            )
        return self.functions[name]

    def load_program(self, name: str | None = None):
        """The MIL program of one function (coremltools' milproto loader)."""
        from coremltools.converters.mil.frontend.milproto.load import load
        from coremltools.proto import Model_pb2

        info = self.function(name)
        functions = self.spec.mlProgram.functions
        if info.name not in functions:
            raise ModelFormatError(f"{self.path.name}: function {info.name!r} is described but has no program")
        single = Model_pb2.Model()
        single.CopyFrom(self.spec)
        for other in list(single.mlProgram.functions.keys()):
            if other != info.name:
                del single.mlProgram.functions[other]
        try:
            program = load(single, single.specificationVersion, file_weights_dir=str(self.weights_dir))
        except Exception as exc:
            raise ModelFormatError(f"{self.path.name}: function {info.name!r} could not be loaded as MIL ({type(exc).__name__}: {exc})") from exc
        return program.functions[info.name]
