"""Faster coremltools conversions: the same program, less bookkeeping around it.

Measured on the default model's FFN chunk (``ct.convert`` of one program, timed pass by
pass): the graph passes re-ran type inference and validation far more than the program
needs. :func:`lean_pipeline` keeps every pass and its result, and drops only work whose
outcome is known in advance:

- ``Program.validate()`` ran after each of the ~110 passes: it runs once, after the pipeline
  (and not at all for a program saved as it is, whose passes are all skipped);
- the whole program was printed for debug log lines nobody reads: it prints as a stub;
- ``add_fp16_cast`` took |x| of every fp32 weight to look for values beyond fp16: a min/max
  inside fp16's range answers that without the copies;
- it also copied every weight to count its entries (looking for small arrays whose values
  round to zero): their size answers that;
- ``reduce_transposes`` (three runs) re-inferred the type of every op even when it had
  cancelled no transpose (always, on our graphs): only after a cancellation now;
- ``compose_conv1d`` restarted its scan of the block after each of the ~200 convolutions
  it rewrote (quadratic): one scan rewrites them all, in the same order.

With ``constexpr_free`` (a float program fresh from torch, as ``ct.convert`` makes it), two
more: the block-exit bookkeeping of "non-replaceable" variables, which only ``constexpr_*``
ops (compressed weights) create, and the torch frontend's element-by-element comparison of
each weight with itself (its state-dict entry is the same tensor).

The saved packages are the same (the spec protobufs compare equal, weights byte for byte).

:func:`save_materialized` turns one program converted with a flexible sequence length into
the fixed-shape ``infer`` + ``prefill`` functions of one package, in memory: one trace and
one ``ct.convert`` per FFN chunk instead of two, and only the few passes fixed shapes need
afterwards (coremltools' ``materialize_dynamic_shape_mlmodel`` reruns its whole default
pipeline on every function).
"""

from __future__ import annotations

import contextlib

import numpy as np

#: fp16's largest finite value
FP16_MAX = 65504.0


def _fp16_overflow(original):
    """``FP16ComputePrecision.fp16_overflow`` that settles weights inside fp16's range with a
    min/max (no copies) and asks the original only about the others."""
    def fp16_overflow(op) -> bool:
        for inputs in op.inputs.values():
            for var in inputs if isinstance(inputs, (list, tuple)) else (inputs,):
                if var.op is not None and var.op.op_type == "const" and var.is_tensor_or_scalar_of(dtype="fp32"):
                    value = np.asarray(var.op.val.val)
                    if value.size and not (-FP16_MAX <= value.min() and value.max() <= FP16_MAX):
                        return original(op)  # beyond fp16, or NaN: the original rule (it lets infinities pass)
        return False

    return staticmethod(fp16_overflow)


def _check_underflow_to_zero(original):
    """``FP16ComputePrecision._check_underflow_to_zero`` without flattening (copying) every
    weight to learn its size: only arrays under 400 entries are checked."""
    def check(self, new_var, var) -> None:
        if new_var.val is not None and np.size(var.val) < 400:
            original(self, new_var, var)

    return check


def _apply_transform(self) -> None:
    """``_TransposeOptimization.apply_transform`` without debug printing, re-inferring types
    only when a transpose was cancelled (otherwise the program is unchanged)."""
    self._verify_cancellable_transposes()
    for transpose_op in self.transpose_op_to_cancel_ops:
        self._remove_transpose_ops(transpose_op)
    self.block.set_outputs([sink_op.x for sink_op in self.output_sink_ops])
    self.block.remove_ops(list(self.output_sink_ops))
    if self.transpose_op_to_cancel_ops:
        for op in self.block.operations:
            op.type_value_inference(overwrite_output=True)


def _compose_conv1d_block(self, block) -> None:
    """``compose_conv1d`` in one scan: each rewrite only removes ops the scan then skips."""
    for op in list(block.operations):
        if op.enclosing_block is None:
            continue
        for inner in op.blocks:
            self._compose_conv1d_block(inner)
        if op.op_type != "expand_dims" or op.x.rank != 3:
            continue
        if not self._try_match_and_transform_pattern(op, block):
            self._try_match_and_transform_pattern_channel_last(op, block)


def _identical_or_equal(original):
    def equal(a, b) -> bool:
        return a is b or original(a, b)

    return equal


@contextlib.contextmanager
def _patched(*replacements):
    """Set ``(owner, name, value)`` attributes for the duration, restoring them after."""
    saved = [(owner, name, owner.__dict__[name]) for owner, name, _ in replacements]
    try:
        for owner, name, value in replacements:
            setattr(owner, name, value)
        yield
    finally:
        for owner, name, value in saved:
            setattr(owner, name, value)


@contextlib.contextmanager
def lean_pipeline(constexpr_free: bool = False):
    """Run coremltools' pipelines inside without the redundant work listed above; with
    ``constexpr_free`` only around programs that hold no ``constexpr_*`` op (``ct.convert`` of
    a float torch module)."""
    import torch
    from coremltools.converters.mil.mil import Block, Program
    from coremltools.converters.mil.mil.passes import pass_pipeline
    from coremltools.converters.mil.mil.passes.defs import optimize_conv, optimize_repeat_ops, quantization
    from coremltools.converters.mil.mil.passes.helper import block_context_manager

    manager = pass_pipeline.PassPipelineManager
    original_apply = manager.__dict__["apply_pipeline"]
    original_validate = Program.validate

    def apply_pipeline(prog, pipeline):
        Program.validate = lambda self, *a, **k: None
        try:
            original_apply.__func__(prog, pipeline)
        finally:
            Program.validate = original_validate
        if not prog.skip_all_passes:  # (when it is set, no pass ran: the program is as it came)
            # once, on the result (scopes are checked where coremltools checks them: after dead code elimination)
            prog.validate(check_essential_scope="common::dead_code_elimination" in pipeline.passes)

    fp16 = quantization.FP16ComputePrecision
    replacements = [
        (manager, "apply_pipeline", staticmethod(apply_pipeline)),
        (Program, "__str__", lambda self, *a, **k: f"<MIL program, {len(self.functions)} function(s)>"),
        (fp16, "fp16_overflow", _fp16_overflow(fp16.__dict__["fp16_overflow"].__func__)),
        (fp16, "_check_underflow_to_zero", _check_underflow_to_zero(fp16.__dict__["_check_underflow_to_zero"])),
        (optimize_repeat_ops._TransposeOptimization, "apply_transform", _apply_transform),
        (optimize_conv.compose_conv1d, "_compose_conv1d_block", block_context_manager(_compose_conv1d_block)),
    ]
    if constexpr_free:
        replacements += [(Block, "_propagate_nonreplaceable_vars", lambda self: None),
                         (torch, "equal", _identical_or_equal(torch.equal))]
    with _patched(*replacements):
        yield


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
