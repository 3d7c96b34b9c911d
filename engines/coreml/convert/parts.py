"""Tracing and converting each part with coremltools (fp16, macOS 15 / iOS 18, KV state)."""

from __future__ import annotations

import contextlib
import functools
import logging
import warnings

import numpy as np
import torch

from anechat.engines.coreml.convert.ane_llama import STATE_NAME, Embeddings, FFNChunk, LMHead, state_shape
from anechat.engines.modeling.spec import ModelSpec

FFN_FUNCTIONS = ("infer", "prefill")

#: The modules are traced in float32: torch's fp16 CPU kernels are slow, and coremltools casts
#: every weight and op to fp16 (compute_precision=FLOAT16, fp16 inputs/outputs/state), giving
#: the same program as tracing an fp16 module.
TRACE_DTYPE = torch.float32


def _ct():
    import coremltools as ct

    return ct


@contextlib.contextmanager
def quiet():
    """Silence coremltools' progress bars, warnings and log lines while it works (the caller
    reports progress through its own callback)."""
    import tqdm

    logger = logging.getLogger("coremltools")
    level = logger.level
    logger.setLevel(logging.ERROR)  # before the import: coremltools logs its version checks on import
    from coremltools.converters.mil.frontend.torch import ops as torch_ops
    from coremltools.converters.mil.mil.passes import pass_pipeline
    from coremltools.optimize.coreml import _quantization_passes

    patched = [(torch_ops, "_tqdm"), (pass_pipeline, "tqdm"), (_quantization_passes, "tqdm")]
    saved = [(module, name, getattr(module, name)) for module, name in patched if hasattr(module, name)]
    silent = functools.partial(tqdm.tqdm, disable=True)
    try:
        for module, name, _ in saved:
            setattr(module, name, silent)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
        for module, name, original in saved:
            setattr(module, name, original)


def _convert(traced, *, inputs, outputs, states=None):
    from anechat.engines.coreml.convert.lean import lean_pipeline

    ct = _ct()
    with quiet(), lean_pipeline(constexpr_free=True):
        return ct.convert(
            traced,
            inputs=inputs,
            outputs=outputs,
            states=states or None,
            convert_to="mlprogram",
            minimum_deployment_target=ct.target.macOS15,
            compute_precision=ct.precision.FLOAT16,
            skip_model_load=True,
        )


def _trace(module: torch.nn.Module, example: tuple):
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        return torch.jit.trace(module.eval(), example, check_trace=False)


def trace_embeddings(module: Embeddings, batch_size: int):
    return _trace(module, (torch.zeros((1, batch_size), dtype=torch.int32),))


def convert_embeddings(traced, batch_size: int):
    ct = _ct()
    shape = (1, 1) if batch_size == 1 else ct.EnumeratedShapes(shapes=[[1, 1], [1, batch_size]], default=[1, 1])
    ids = ct.TensorType(name="input_ids", shape=shape, dtype=np.int32)
    return _convert(traced, inputs=[ids], outputs=[ct.TensorType(name="hidden_states", dtype=np.float16)])


def ffn_example(spec: ModelSpec, seq: int, state_length: int, dtype=TRACE_DTYPE) -> tuple:
    return (
        torch.zeros((1, seq, spec.hidden_size), dtype=dtype),
        torch.arange(seq, dtype=torch.int32),
        torch.zeros((1, 1, seq, state_length), dtype=dtype),
        torch.zeros((1,), dtype=torch.int32),
    )


#: positions of the example an FFN chunk is traced on: the trace keeps sequence sizes symbolic
#: (the same program for any size above one), and a short example computes little while tracing
TRACE_POSITIONS = 2


def trace_ffn(module: FFNChunk, spec: ModelSpec, batch_size: int, state_length: int):
    """One trace for both functions: "prefill" mode on a few positions (sizes stay symbolic in the trace)."""
    module.mode = "prefill"
    try:
        return _trace(module, ffn_example(spec, min(batch_size, TRACE_POSITIONS), state_length, module.kv_cache.dtype))
    finally:
        module.kv_cache.zero_()  # tracing ran the graph once and wrote into the buffer


def ffn_shapes(spec: ModelSpec, seq, state_length: int) -> dict:
    """Input name -> shape of an FFN chunk function taking ``seq`` positions."""
    return {
        "hidden_states": (1, seq, spec.hidden_size),
        "position_ids": (seq,),
        "causal_mask": (1, 1, seq, state_length),
        "current_pos": (1,),
    }


def convert_ffn(traced, spec: ModelSpec, batch_size: int, state_length: int):
    """One program for 1 to ``batch_size`` positions; :func:`save_ffn` fixes it into ``infer`` and ``prefill``."""
    ct = _ct()
    seq = ct.RangeDim(lower_bound=1, upper_bound=batch_size, default=1, symbol="seq") if batch_size > 1 else 1
    dtypes = {"hidden_states": np.float16, "position_ids": np.int32, "causal_mask": np.float16, "current_pos": np.int32}
    inputs = [ct.TensorType(name=name, shape=shape, dtype=dtypes[name]) for name, shape in ffn_shapes(spec, seq, state_length).items()]
    state = ct.StateType(
        wrapped_type=ct.TensorType(shape=state_shape(spec, state_length), dtype=np.float16), name=STATE_NAME
    )
    outputs = [ct.TensorType(name="output_hidden_states", dtype=np.float16)]
    return _convert(traced, inputs=inputs, outputs=outputs, states=[state])


def trace_lm_head(module: LMHead, spec: ModelSpec):
    dtype = module.heads[0].weight.dtype
    return _trace(module, (torch.zeros((1, 1, spec.hidden_size), dtype=dtype),))


def convert_lm_head(traced, spec: ModelSpec, parts: int):
    ct = _ct()
    inputs = [ct.TensorType(name="hidden_states", shape=(1, 1, spec.hidden_size), dtype=np.float16)]
    outputs = [ct.TensorType(name=f"logits{i + 1}", dtype=np.float16) for i in range(parts)]
    return _convert(traced, inputs=inputs, outputs=outputs)


def save_ffn(mlmodel, spec: ModelSpec, batch_size: int, state_length: int, destination) -> None:
    """Save a :func:`convert_ffn` program as one package of ``infer`` (one position) and
    ``prefill`` (``batch_size``) functions, their weights stored once."""
    from anechat.engines.coreml.convert.lean import save_materialized

    functions = {name: ffn_shapes(spec, seq, state_length) for name, seq in zip(FFN_FUNCTIONS, (1, batch_size))}
    with quiet():
        save_materialized(mlmodel, functions, str(destination))
