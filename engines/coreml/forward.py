"""Token ids in, logits out: embeddings -> FFN chunks (shared KV state) -> LM head; or, for a
monolithic model, the one package's ``infer`` / ``prefill`` on the token ids themselves.

Runtime-agnostic: it builds the inputs ANEMLL parts expect (``input_ids``,
``position_ids``, ``causal_mask``, ``current_pos``, and ``update_mask`` where a
part declares it) and reads their outputs (``logits1..N`` concatenated, or the
per-chunk ``argmax_idx`` / ``argmax_val`` of ``argmax_in_model`` parts mapped back
to the vocabulary).
"""

from __future__ import annotations

import re
from typing import Any, Sequence

import numpy as np

from anechat.engines.errors import ModelFormatError
from anechat.engines.coreml.anemll import AnemllMeta
from anechat.engines.coreml.runtime_base import CoreMLRuntime

_LOGITS = re.compile(r"^logits(\d+)$")
NEG_INF = np.float32(-np.inf)


class ForwardPass:
    def __init__(self, runtime: CoreMLRuntime) -> None:
        self.runtime = runtime
        layout = runtime.layout
        meta = layout.meta
        self.meta = meta
        #: one package takes token ids and returns logits (no embeddings or LM head part)
        self.monolithic = layout.monolithic
        self._first_input = "input_ids" if self.monolithic else "hidden_states"
        first = runtime.chunks[0]
        infer_info = first.infer.info(first.infer_function)
        self.mask_length = meta.state_length or meta.context_length
        if infer_info is not None:
            if "causal_mask" not in infer_info.inputs or self._first_input not in infer_info.inputs:
                what = "the monolithic infer function" if self.monolithic else "the FFN infer function"
                raise ModelFormatError(
                    f"{first.infer.files.any_path.name}: {what} takes {sorted(infer_info.inputs)}, "
                    f"not {self._first_input} / causal_mask as ANEMLL parts do"
                )
            self.mask_length = infer_info.inputs["causal_mask"].shape[-1]
        self.context_length = min(meta.context_length, self.mask_length)
        if meta.sliding_window and meta.sliding_window < self.context_length:
            self.context_length = meta.sliding_window  # no rotate functions here: stay inside the window
        self.has_prefill = all(c.prefill is not None for c in runtime.chunks)
        self.batch_size = meta.batch_size
        if self.has_prefill:
            pinfo = first.prefill.info(first.prefill_function)  # type: ignore[union-attr]
            if pinfo is not None and self._first_input in pinfo.inputs:
                self.batch_size = pinfo.inputs[self._first_input].shape[1]
        emb = runtime.embeddings.info(None) if runtime.embeddings is not None else None
        shapes = emb.inputs["input_ids"].shapes if emb is not None and "input_ids" in emb.inputs else None
        self.embed_batched = shapes is None or (1, self.batch_size) in shapes or any(-1 in s for s in shapes)
        self.argmax_in_model = meta.argmax_in_model
        if self.argmax_in_model and not (meta.lm_head_chunk_sizes or meta.vocab_size):
            raise ModelFormatError(
                f"{meta.path}: argmax_in_model needs model_info.parameters.lm_head_chunk_sizes "
                "or vocab_size to map chunk indices to token ids",
                hint="add lm_head_chunk_sizes (the vocabulary size of each LM head chunk) to meta.yaml",
            )
        self.state = runtime.make_state()

    # -- state ----------------------------------------------------------------------
    def reset(self) -> None:
        """A fresh state (only needed after an error: trimming just moves the position back)."""
        self.state = self.runtime.make_state()

    # -- building blocks --------------------------------------------------------------
    def _mask(self, start: int, rows: int) -> np.ndarray:
        """Rows for queries at start..start+rows-1: 0 where key j <= query position, -inf after."""
        q = np.arange(start, start + rows)[:, None]
        k = np.arange(self.mask_length)[None, :]
        return np.where(k <= q, np.float32(0), NEG_INF).astype(np.float32).reshape(1, 1, rows, self.mask_length)

    def _embed(self, ids: Sequence[int]) -> np.ndarray:
        """What the first chunk takes: hidden states, or (monolithic) the token ids themselves."""
        arr = np.asarray(ids, dtype=np.int32).reshape(1, -1)
        if self.monolithic:
            return arr
        if arr.shape[1] == 1 or self.embed_batched:
            return self.runtime.embeddings.predict({"input_ids": arr})["hidden_states"]
        return np.concatenate([self.runtime.embeddings.predict({"input_ids": arr[:, i : i + 1]})["hidden_states"] for i in range(arr.shape[1])], axis=1)

    def _chunk_inputs(self, info, hidden: np.ndarray, start: int, rows: int) -> dict[str, np.ndarray]:
        inputs = {
            self._first_input: hidden,
            "position_ids": np.arange(start, start + rows, dtype=np.int32),
            "causal_mask": self._mask(start, rows),
            "current_pos": np.array([start], dtype=np.int32),
        }
        if info is not None:
            if "update_mask" in info.inputs:  # older ANEMLL parts: one-hot rows of the positions written
                shape = info.inputs["update_mask"].shape
                um = np.zeros(shape, np.float32)
                for r in range(rows):
                    if start + r < shape[2]:
                        um[0, 0, start + r, r if shape[3] > 1 else 0] = 1.0
                inputs["update_mask"] = um
            unknown = set(info.inputs) - set(inputs)
            if unknown:
                raise ModelFormatError(f"{'monolithic' if self.monolithic else 'FFN'} part takes inputs anechat does not know how to fill: {sorted(unknown)}")
            inputs = {k: v for k, v in inputs.items() if k in info.inputs}
        return inputs

    def _run_chunks(self, hidden: np.ndarray, start: int, rows: int, prefill: bool) -> dict[str, np.ndarray]:
        """Every chunk in turn, each on the last one's hidden states; the last chunk's outputs."""
        out: dict[str, np.ndarray] = {}
        for c in self.runtime.chunks:
            part, fn = (c.prefill, c.prefill_function) if prefill else (c.infer, c.infer_function)
            out = part.predict(self._chunk_inputs(part.info(fn), hidden, start, rows), self.state, fn)  # type: ignore[union-attr]
            hidden = out.get("output_hidden_states")  # type: ignore[assignment]
        return out

    # -- what the session calls ----------------------------------------------------------
    def prefill(self, ids: Sequence[int], start: int, on_progress=None) -> int:
        """Write the KV of ``ids`` at positions start.. (no logits). Returns the new position."""
        pos, i, n = start, 0, len(ids)
        batch = self.batch_size
        while i < n:
            take = min(batch, n - i)
            fits = pos + batch <= self.mask_length
            if self.has_prefill and take > 1 and fits:
                chunk = list(ids[i : i + take]) + [0] * (batch - take)  # padded rows are masked, their KV overwritten later
                self._run_chunks(self._embed(chunk), pos, batch, prefill=True)
                pos += take
            else:
                for t in ids[i : i + take]:  # single tokens (near the end of the window, or no prefill function)
                    self._run_chunks(self._embed([t]), pos, 1, prefill=False)
                    pos += 1
            i += take
            if on_progress is not None:
                on_progress(pos)
        return pos

    def infer(self, token: int, pos: int) -> np.ndarray | int:
        """Run one token at ``pos``: its logits over the vocabulary (or the token id, for argmax parts)."""
        out = self._run_chunks(self._embed([token]), pos, 1, prefill=False)
        head = self.runtime.lm_head
        if head is None:  # monolithic: the one package returns the logits itself
            return read_lm_head(out, self.meta, self.runtime.chunks[0].infer.files.any_path.name)
        out = head.predict({"hidden_states": out["output_hidden_states"]})
        return read_lm_head(out, self.meta, head.files.any_path.name)


def read_lm_head(out: dict[str, Any], meta: AnemllMeta, part: str = "LM head") -> np.ndarray | int:
    """The LM head's outputs as vocabulary logits; or, for argmax-in-model heads, the chosen token id."""
    if "argmax_idx" in out and "argmax_val" in out:
        idx = np.asarray(out["argmax_idx"]).reshape(-1).astype(np.int64)
        val = np.asarray(out["argmax_val"], dtype=np.float32).reshape(-1)
        best = int(np.argmax(val))
        return int(idx[best] + argmax_offsets(meta, len(idx))[best])
    numbered = sorted((int(m.group(1)), k) for k in out if (m := _LOGITS.match(k)))
    if numbered:  # logits1..N, in numeric order (logits10 after logits9)
        return np.concatenate([np.asarray(out[k], dtype=np.float32).reshape(-1) for _, k in numbered])
    for key in ("logits", "output_logits"):
        if key in out:
            return np.asarray(out[key], dtype=np.float32).reshape(-1)
    raise ModelFormatError(f"{part} returns {sorted(out)}, not logits1..N or argmax_idx/argmax_val")


def argmax_offsets(meta: AnemllMeta, chunks: int) -> np.ndarray:
    """Where each LM head chunk starts in the vocabulary (argmax_in_model gives chunk-local indices)."""
    sizes = list(meta.lm_head_chunk_sizes or ())
    if len(sizes) != chunks:
        if not meta.vocab_size:
            raise ModelFormatError(
                f"{meta.path}: argmax_in_model needs model_info.parameters.lm_head_chunk_sizes "
                f"({chunks} sizes) or vocab_size to map chunk indices to token ids"
            )
        base, rem = divmod(meta.vocab_size, chunks)  # how ANEMLL splits the vocabulary
        sizes = [base + (1 if i < rem else 0) for i in range(chunks)]
    return np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
