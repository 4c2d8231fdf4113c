"""grammask: JSON Schema constrained decoding for language models.

Compile a schema once per request shape, keep one ``Matcher`` per sequence,
and at each decoding step fill a row of an int32 bitmask with the tokens that
keep the output on a path to a valid instance::

    import grammask, numpy as np
    vocab = grammask.Vocabulary.from_tiktoken("cl100k_base")
    grammar = grammask.Compiler(vocab).compile_json_schema({"type": "boolean"})
    matcher = grammask.Matcher(grammar)
    bitmask = grammask.allocate_token_bitmask(1, vocab.size)
    matcher.fill_next_token_bitmask(bitmask, 0)

The promises are the Rust crate's: an output the masks let through, that
ends, validates; what cannot be enforced is a ``CompileError`` (strict, the
default) or, with ``strict=False``, listed in ``Grammar.relaxations``.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from ._grammask import (
    CompileError,
    Compiler,
    Grammar,
    MatchError,
    Matcher,
    VocabError,
    Vocabulary,
    __version__,
    _apply_bitmask_f32,
    _apply_bitmask_u16,
    fill_next_token_bitmask_batch,
)

__all__ = [
    "CompileError",
    "Compiler",
    "Grammar",
    "MatchError",
    "Matcher",
    "VocabError",
    "Vocabulary",
    "__version__",
    "allocate_token_bitmask",
    "apply_token_bitmask_inplace",
    "fill_next_token_bitmask_batch",
]


def allocate_token_bitmask(batch_size: int, vocab_size: int) -> np.ndarray:
    """An int32 bitmask of shape ``[batch_size, ceil(vocab_size / 32)]`` with
    every token allowed (all bits set), ready for ``fill_next_token_bitmask``."""
    return np.full((batch_size, (vocab_size + 31) // 32), -1, dtype=np.int32)


def apply_token_bitmask_inplace(logits: Any, bitmask: Any, indices: Optional[Sequence[int]] = None) -> None:
    """Sets to -inf every logit whose token ``bitmask`` disallows, in place.

    ``logits``: shape ``[vocab]`` or ``[batch, vocab]``, float32, float16 or
    (torch) bfloat16, a numpy array or a CPU torch tensor. ``bitmask``: int32
    of shape ``[words]`` or ``[batch, words]``; row ``i`` masks logits row
    ``i``. ``indices`` limits the work to those rows. Tokens past the
    bitmask's width are disallowed.
    """
    idx = None if indices is None else [int(i) for i in indices]
    if type(logits).__module__.startswith("torch"):
        if logits.is_cuda:
            raise ValueError("logits must be a CPU tensor")
        name = str(logits.dtype)
        if name == "torch.float32":
            _apply_bitmask_f32(logits.numpy(), bitmask, idx)
        elif name in ("torch.float16", "torch.bfloat16"):
            import torch

            bits = 0xFC00 if name == "torch.float16" else 0xFF80
            _apply_bitmask_u16(logits.view(torch.int16).numpy().view(np.uint16), bitmask, bits, idx)
        else:
            raise ValueError(f"logits must be float32, float16 or bfloat16, not {name}")
        return
    if not isinstance(logits, np.ndarray):
        raise TypeError(f"logits must be a numpy array or a CPU torch tensor, not {type(logits).__name__}")
    arr = logits
    if arr.dtype == np.float32:
        _apply_bitmask_f32(arr, bitmask, idx)
    elif arr.dtype == np.float16:
        _apply_bitmask_u16(arr.view(np.uint16), bitmask, 0xFC00, idx)
    else:
        raise ValueError(f"logits must be float32 or float16, not {arr.dtype}")
