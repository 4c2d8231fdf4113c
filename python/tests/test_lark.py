"""The Lark front-end judged by llguidance, the reference for the dialect.

grammask reads a Lark grammar as llguidance does (a greedy lexer with one
byte of lookahead), and may refuse a few lexeme cuts llguidance allows, never
the other way round. So:
- every verdict in corpora/lark/cases.json is llguidance's (accepted and
  rejected strings), except the documented differences in `stricter`,
  which llguidance must accept;
- every output of a random walk through grammask's masks, finished or not,
  is read by llguidance without an error (a prefix grammask allows is one
  llguidance allows), and every finished one is accepted.

llguidance reads bytes through a byte-level tokenizer built here; grammask
walks on cl100k. Needs the `llguidance` package (installed by
tests/python_package.rs); skipped without it.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

import grammask

llguidance = pytest.importorskip("llguidance")

REPO = Path(os.environ.get("GRAMMASK_REPO", Path(__file__).resolve().parents[2]))
SHARED = Path(os.environ.get("GRAMMASK_SHARED_CORPORA", REPO.parent / "shared" / "corpora"))
CASES = json.loads((REPO / "corpora" / "lark" / "cases.json").read_text())["cases"]
WALKS = int(os.environ.get("GRAMMASK_LARK_PY_WALKS", "12"))


def _byte_tokenizer():
    """An llguidance tokenizer with one token per byte (id = byte) and EOS 256."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    vocab = {chars[b]: b for b in range(256)}
    vocab["<eos>"] = 256
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    spec = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {"id": 256, "content": "<eos>", "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": False, "special": True}
        ],
        "normalizer": None,
        "pre_tokenizer": byte_level,
        "post_processor": None,
        "decoder": byte_level,
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "ignore_merges": False, "vocab": vocab, "merges": []},
    }
    path = Path(tempfile.mkdtemp()) / "tokenizer.json"
    path.write_text(json.dumps(spec))
    return llguidance.LLTokenizer(str(path), eos_token=256)


@pytest.fixture(scope="module")
def reference():
    tok = _byte_tokenizer()

    def read(grammar: str, data: bytes) -> tuple[bool, bool]:
        """(every byte consumed, accepting at the end) under llguidance."""
        m = llguidance.LLMatcher(tok, llguidance.LLMatcher.grammar_from_lark(grammar))
        assert not m.is_error(), m.get_error()
        for b in data:
            if not m.consume_token(b):
                return False, False
        return True, m.is_accepting()

    return read


@pytest.fixture(scope="module")
def cl100k() -> grammask.Vocabulary:
    return grammask.Vocabulary.from_tiktoken("cl100k_base")


def _compilable():
    return [c for c in CASES if "error" not in c]


@pytest.mark.parametrize("case", _compilable(), ids=lambda c: c["name"])
def test_case_verdicts_agree_with_llguidance(case, reference):
    for s in case["accepted"]:
        assert reference(case["grammar"], s.encode()) == (True, True), f"llguidance rejects {s!r}"
    for s in case["rejected"]:
        assert reference(case["grammar"], s.encode())[1] is False, f"llguidance accepts {s!r}"
    # Documented differences: grammask rejects these, llguidance accepts them.
    for s in case.get("stricter", []):
        assert reference(case["grammar"], s.encode()) == (True, True), f"llguidance rejects {s!r}: not stricter"


def _allowed(row: np.ndarray, size: int) -> np.ndarray:
    bits = np.unpackbits(row.view(np.uint8), bitorder="little")[:size]
    return np.flatnonzero(bits)


def _grammars():
    out = [(c["name"], c["grammar"]) for c in _compilable()]
    rfc = SHARED / "grammars" / "lark" / "rfc.lark"
    if rfc.exists():
        out.append(("rfc.lark", rfc.read_text()))
    return out


@pytest.mark.parametrize("name,grammar", _grammars(), ids=[n for n, _ in _grammars()])
def test_walks_are_read_by_llguidance(name, grammar, cl100k, reference):
    g = grammask.Compiler(cl100k).compile_lark(grammar)
    size = cl100k.size
    bitmask = grammask.allocate_token_bitmask(1, size)
    stops = set(cl100k.stop_token_ids)
    rng = np.random.default_rng(len(name))
    finished = 0
    for _ in range(WALKS):
        m = g.matcher()
        out = b""
        for _ in range(60):
            if m.is_terminated():
                break
            assert m.fill_next_token_bitmask(bitmask, 0), m.get_error()
            ids = _allowed(bitmask[0], size)
            ends = [i for i in ids if i in stops]
            # Prefer ending now and then, so that walks finish.
            t = int(ends[0]) if ends and rng.random() < 0.3 else int(rng.choice(ids))
            assert m.accept_token(t), m.get_error()
            if t not in stops:
                out += cl100k.token_bytes(t)
        consumed, accepting = reference(grammar, out)
        assert consumed, f"{name}: llguidance rejects the prefix {out!r}"
        if m.is_terminated():
            finished += 1
            assert accepting, f"{name}: llguidance does not accept the output {out!r}"
    print(f"{name}: {WALKS} walks, {finished} finished, every prefix read by llguidance")
