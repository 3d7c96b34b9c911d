"""The MIL executor: runs saved Core ML ``.mlpackage`` programs with numpy, anywhere.

It loads each package back into MIL with coremltools' proto reader and executes
exactly the ops on disk (fp32 math on the CPU). It is how anechat runs Core ML
models where Core ML itself is unavailable (Linux), and how tests prove that a
converted model computes what its source model computes.
"""

from anechat.engines.coreml.mil.compiler import Plan, UnsupportedOp, compile_function
from anechat.engines.coreml.mil.package_reader import FunctionInfo, MILPackage, TensorInfo
from anechat.engines.coreml.mil.model import MILModel
from anechat.engines.coreml.mil.ops_state import StateSlot
from anechat.engines.coreml.mil.runner import MILRunError, run_plan

__all__ = [
    "FunctionInfo",
    "MILModel",
    "MILPackage",
    "MILRunError",
    "Plan",
    "StateSlot",
    "TensorInfo",
    "UnsupportedOp",
    "compile_function",
    "run_plan",
]
