"""The Core AI engine: ``.aimodel`` assets (Apple's Core AI, macOS 27), converter and runtime.

``convert/`` rebuilds a llama-family model as a runtime-friendly torch module and writes
one stateful asset with ``prefill`` and ``infer`` entrypoints; :mod:`.engine` runs it
through ``coreai.runtime`` (Apple's runtime; on Linux it executes on the CPU).
"""
