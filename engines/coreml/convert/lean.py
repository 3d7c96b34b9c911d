"""Faster coremltools conversions: the same program, less bookkeeping around it.

Measured on the default model's FFN chunk (``ct.convert`` of ``infer``, profiled): about
a third of the time went to ``Program.validate()`` after each of the ~110 graph passes,
and several seconds to printing the whole program for debug log lines nobody reads.
:func:`lean_pipeline` validates the program once after the pipeline instead, and prints
it as a stub. :func:`save_multifunction` builds the ``infer`` + ``prefill`` package from
the converted programs in memory, instead of coremltools' route (save each function,
read each back from protobuf, merge, save again).
"""

from __future__ import annotations

import contextlib


@contextlib.contextmanager
def lean_pipeline():
    from coremltools.converters.mil.mil import Program
    from coremltools.converters.mil.mil.passes import pass_pipeline

    manager = pass_pipeline.PassPipelineManager
    original_apply = manager.__dict__["apply_pipeline"]
    original_validate, original_str = Program.validate, Program.__str__

    def apply_pipeline(prog, pipeline):
        Program.validate = lambda self, *a, **k: None
        try:
            original_apply.__func__(prog, pipeline)
        finally:
            Program.validate = original_validate
        # once, on the result (scopes are checked where coremltools checks them: after dead code elimination)
        prog.validate(check_essential_scope="common::dead_code_elimination" in pipeline.passes)

    manager.apply_pipeline = staticmethod(apply_pipeline)
    Program.__str__ = lambda self, *a, **k: f"<MIL program, {len(self.functions)} function(s)>"
    try:
        yield
    finally:
        manager.apply_pipeline = original_apply
        Program.validate, Program.__str__ = original_validate, original_str


def save_multifunction(models: dict, destination: str) -> None:
    """Save converted single-function models (name -> MLModel, each with its MIL program)
    as one package whose functions share identical weights; the first is the default."""
    import coremltools as ct
    from coremltools import proto
    from coremltools.converters.mil import mil
    from coremltools.converters.mil.converter import mil_convert

    program = mil.Program()
    descriptions = []
    spec_version = ct._SPECIFICATION_VERSION_IOS_18  # multifunction packages need iOS 18
    for name, model in models.items():
        spec = model.get_spec()
        spec_version = max(spec_version, spec.specificationVersion)
        program.add_function(name, model._mil_program.functions["main"])
        d = spec.description
        descriptions.append(
            proto.Model_pb2.FunctionDescription(
                name=name, input=d.input, output=d.output, state=d.state,
                predictedFeatureName=d.predictedFeatureName, predictedProbabilitiesName=d.predictedProbabilitiesName,
            )
        )
    _share_weights(program)
    default = next(iter(models))
    program.default_function_name = default
    program.skip_all_passes = True
    program.export_as_multifunction = True
    with lean_pipeline():
        mlmodel = mil_convert(
            program,
            convert_to="mlprogram",
            convert_from="milinternal",
            specification_version=spec_version,
            compute_units=ct.ComputeUnit.CPU_ONLY,
            model_description=proto.Model_pb2.ModelDescription(functions=descriptions, defaultFunctionName=default),
            skip_model_load=True,
        )
    mlmodel.save(destination)


def _share_weights(program) -> None:
    """Give constants with identical bytes, in any function, one ``weight_id`` so the package
    stores them once (coremltools' cross-function deduplication compares with ``allclose``;
    exact bytes through a hash do the same job for weights copied from one tensor)."""
    import hashlib

    import numpy as np

    groups: dict[tuple, list] = {}
    for function in program.functions.values():
        for op in function.operations:
            if op.op_type != "const":
                continue
            value = op.outputs[0].val
            if not isinstance(value, np.ndarray) or value.dtype == object:
                continue
            data = np.ascontiguousarray(value)
            key = (data.dtype.str, data.shape, hashlib.blake2b(memoryview(data).cast("B"), digest_size=16).digest())
            groups.setdefault(key, []).append(op)
    for i, ops in enumerate(g for g in groups.values() if len(g) > 1):
        for op in ops:
            op.weight_id = str(i)


def save_program(model, destination: str) -> None:
    """Save a converted model whose MIL program was changed in place (e.g. palettized),
    with the inputs, outputs and states its spec describes."""
    from coremltools.converters.mil.converter import mil_convert

    spec = model.get_spec()
    program = model._mil_program
    program.skip_all_passes = True
    with lean_pipeline():
        mlmodel = mil_convert(
            program,
            convert_to="mlprogram",
            convert_from="milinternal",
            specification_version=spec.specificationVersion,
            compute_units=model.compute_unit,
            model_description=spec.description,
            skip_model_load=True,
        )
    mlmodel.save(destination)
