"""``convert_to_coreai``: a source folder of a supported family in, a Core AI model folder out.

One stateful asset with two entrypoints sharing the weights (``prefill``: a batch of
tokens; ``infer``: one token), palettized (LUT, :mod:`.palettized`) or quantized (int,
coreai-opt) if asked, its compiled cache, the tokenizer files and the manifest. Everything
is written into a hidden temp folder beside ``out`` and renamed at the end: a failed or
interrupted conversion never leaves a folder that looks like a model.
"""

from __future__ import annotations

import contextlib
import gc
import io
import warnings
from importlib import metadata
from pathlib import Path
from typing import Callable

from anechat.engines.coreai.compiled import write_compiled
from anechat.engines.coreai.convert.options import CoreAIConvertOptions
from anechat.engines.coreai.manifest import ASSET, COMPILED, ENTRYPOINTS, CoreAIManifest
from anechat.engines.coreml.convert.output_folder import copy_tokenizer
from anechat.engines.coreml.convert.source import load_weights, read_spec, with_vocab_from_weights
from anechat.engines.errors import BackendUnavailable, InvalidParameter
from anechat.engines.files import atomic_folder

ProgressCallback = Callable[[str, "float | None"], None]
STEPS = 7


def converter_version() -> str:
    try:
        return "anechat " + metadata.version("anechat")
    except metadata.PackageNotFoundError:
        return "anechat"


def _require_toolchain() -> None:
    try:
        import coreai.authoring  # noqa: F401
        import coreai_torch  # noqa: F401
        import torch  # noqa: F401
    except ImportError as exc:
        raise BackendUnavailable(f"the Core AI converter needs {exc.name}", hint='install the Core AI extra: pip install "anechat[coreai]"') from None


def convert_to_coreai(src: Path, out: Path, options: CoreAIConvertOptions | None = None, progress: ProgressCallback | None = None) -> Path:
    """Convert the float model in ``src`` into the Core AI model folder ``out``; returns ``out``."""
    options = (options or CoreAIConvertOptions()).check()
    src, out = Path(src).expanduser(), Path(out).expanduser()
    spec = with_vocab_from_weights(read_spec(src), src)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InvalidParameter(f"{out} already exists", hint="choose a new folder or delete the old one first")
    _require_toolchain()
    if options.compress.startswith("int"):
        try:
            import coreai_opt  # noqa: F401
        except ImportError:
            raise BackendUnavailable("int quantization needs coreai-opt", hint='pip install "anechat[coreai]"') from None
    done = 0

    def step(message: str) -> None:
        nonlocal done
        if progress is not None:
            progress(message, min(done / STEPS, 1.0))
        done += 1

    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_folder(out) as work:  # a failed or interrupted conversion leaves nothing behind
        step(f"loading weights from {src.name}")
        weights = load_weights(src)
        step(f"building the model ({spec.num_layers} layers, context {options.context_length}, {options.dtype})")
        from anechat.engines.coreai.convert.module import CoreAILlama, state_names

        module = CoreAILlama(spec, weights, options.context_length, options.torch_dtype).eval()
        del weights
        if options.compress.startswith("lut"):  # palettized in torch: our k-means, lowered by coreai-torch
            step(f"palettizing the weights ({options.compress}, group {options.group_size})")
            from anechat.engines.coreai.convert.palettized import palettize_module

            palettize_module(module, int(options.compress[3:]), options.group_size)
        names = state_names(spec.num_layers)
        program = _convert(module, names, options, step)
        del module
        gc.collect()
        if options.compress.startswith("int"):
            step(f"quantizing the weights ({options.compress}, group {options.group_size})")
            from anechat.engines.coreai.convert.compress import compress_program

            with _quiet():
                program = compress_program(program, options.compress, options.group_size)
        elif options.compress == "none":
            step("no compression")
        step("saving the asset and compiling it (the compiled cache makes loading fast)")
        program.save_asset(work / ASSET)
        del program
        gc.collect()
        write_compiled(work / ASSET, work / COMPILED)
        step("writing the manifest and tokenizer files")
        copy_tokenizer(src, work)
        CoreAIManifest(
            name=spec.name,
            architecture=spec.family,
            context_length=options.context_length,
            batch_size=options.batch_size,
            dtype=options.dtype,
            compression=options.compress,
            num_layers=spec.num_layers,
            num_kv_heads=spec.num_kv_heads,
            head_dim=spec.head_dim,
            vocab_size=spec.vocab_size,
            entrypoints=ENTRYPOINTS,
            state_names=tuple(names),
            converter=converter_version(),
            extra={
                "group_size": options.group_size if options.compress != "none" else None,
                "state_dtype": options.state_dtype,
                "license": spec.license,
            },
        ).write(work)
    if progress is not None:
        progress(f"done: {out}", 1.0)
    return out


def _convert(module, names: list[str], options: CoreAIConvertOptions, step):
    """Export ``prefill`` (a batch) and ``infer`` (one token) and convert both into one program."""
    import torch
    from coreai_torch import TorchConverter, get_decomp_table

    converter = TorchConverter(mode=TorchConverter.Mode.RELEASE)
    pos = torch.zeros(1, dtype=torch.int32)
    for mode, seq in (("prefill", options.batch_size), ("infer", 1)):
        step(f"exporting {mode} ({seq} token{'s' if seq > 1 else ''} per call)")
        with _quiet():
            program = torch.export.export(module, (torch.zeros(1, seq, dtype=torch.int32), pos))
            program = program.run_decompositions(get_decomp_table())
            converter.add_exported_program(
                program, input_names=["input_ids", "current_pos"], output_names=["logits"], state_names=names, entrypoint_name=mode
            )
    with _quiet():
        return converter.to_coreai()


@contextlib.contextmanager
def _quiet():
    """coreai-torch draws its own progress bar and torch warns about its version: keep the CLI's output ours."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with contextlib.redirect_stdout(io.StringIO()):
            yield
