"""Faster coremltools conversions: the same program, less bookkeeping around it.

Measured on the default model's FFN chunk (``ct.convert`` of ``infer``, profiled): about
a third of the time went to ``Program.validate()`` after each of the ~110 graph passes,
and several seconds to printing the whole program for debug log lines nobody reads.
:func:`lean_pipeline` validates the program once after the pipeline instead, and prints
it as a stub. :func:`save_materialized` turns one program converted with a flexible
sequence length into the fixed-shape ``infer`` + ``prefill`` functions of one package, in
memory: one trace and one ``ct.convert`` per FFN chunk instead of two, and only the few
passes fixed shapes need afterwards (coremltools' ``materialize_dynamic_shape_mlmodel``
reruns its whole default pipeline on every function).
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


#: after fixing the shapes: fold what they made constant (shape arithmetic), drop what is left unused
MATERIALIZE_PASSES = ["common::materialize_symbolic_shape_program", "common::const_elimination",
                      "common::noop_elimination", "common::dead_code_elimination"]


def save_materialized(model, functions: dict, destination: str) -> None:
    """Save a converted model whose ``main`` function has symbolic sizes as one package of
    fixed-shape functions (name -> {input name: shape}); the first is the default. Their
    constants are copied with one shared ``weight_id``, so the package stores them once."""
    import coremltools as ct
    from coremltools.converters.mil.converter import mil_convert
    from coremltools.converters.mil.mil.passes.pass_pipeline import PassPipeline, PassPipelineManager

    program = model._mil_program
    pipeline = PassPipeline(MATERIALIZE_PASSES, "materialize")
    pipeline.set_options("common::materialize_symbolic_shape_program", {"function_name_to_materialization_map": functions})
    with lean_pipeline():
        PassPipelineManager.apply_pipeline(program, pipeline)
    del program.functions["main"]
    program.default_function_name = next(iter(functions))
    program.skip_all_passes = True
    program.export_as_multifunction = True
    spec_version = max(ct._SPECIFICATION_VERSION_IOS_18, model.get_spec().specificationVersion)  # multifunction: iOS 18
    with lean_pipeline():
        mlmodel = mil_convert(program, convert_to="mlprogram", convert_from="milinternal", specification_version=spec_version,
                              compute_units=ct.ComputeUnit.CPU_ONLY, skip_model_load=True)
    mlmodel.save(destination)


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
