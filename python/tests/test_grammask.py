"""The Python package against the Rust crate and against plain checks.

Run by `cargo test --release` (tests/python_package.rs), which builds the
package, records masks from the Rust crate along canonical token paths into
GRAMMASK_PY_FIXTURE, and runs this file. Standalone (`pip install ./python`
then `pytest python/tests`) the replay test is skipped.
"""

from __future__ import annotations

import copy
import json
import os
import re
import threading
from pathlib import Path

import numpy as np
import pytest

import grammask

REPO = Path(os.environ.get("GRAMMASK_REPO", Path(__file__).resolve().parents[2]))
WRAPPER = REPO / "corpora" / "schemas" / "implementation.json"
SHARED = Path(os.environ.get("GRAMMASK_SHARED_CORPORA", REPO.parent / "shared" / "corpora"))
LLAMA3 = SHARED / "tokenizers" / "llama3_1" / "tokenizer.json"


@pytest.fixture(scope="module")
def cl100k() -> grammask.Vocabulary:
    return grammask.Vocabulary.from_tiktoken("cl100k_base")


@pytest.fixture(scope="module")
def wrapper(cl100k) -> grammask.Grammar:
    return grammask.Compiler(cl100k).compile_json_schema(WRAPPER.read_text())


def allowed(row: np.ndarray, size: int) -> np.ndarray:
    """Token ids whose bit is set in an int32 bitmask row."""
    bits = np.unpackbits(row.view(np.uint8), bitorder="little")[:size]
    return np.flatnonzero(bits)


def decode(matcher: grammask.Matcher, rng: np.random.Generator, max_tokens: int = 20000) -> bytes:
    """A random "model": samples uniformly among the allowed tokens."""
    size = matcher.grammar.vocab.size
    bitmask = grammask.allocate_token_bitmask(1, size)
    for _ in range(max_tokens):
        if matcher.is_terminated():
            return matcher.output
        assert matcher.fill_next_token_bitmask(bitmask, 0), matcher.get_error()
        ids = allowed(bitmask[0], size)
        assert len(ids) > 0
        assert matcher.accept_token(int(rng.choice(ids))), matcher.get_error()
    raise AssertionError("no end")


def check_wrapper_instance(doc) -> None:
    """The incident schema, checked by hand (no validator package needed)."""
    assert isinstance(doc, dict) and set(doc) == {"implementation"}
    inner = doc["implementation"]
    assert set(inner) == {"body_statements", "variables", "imports"}
    assert isinstance(inner["body_statements"], list) and len(inner["body_statements"]) >= 1
    assert all(isinstance(s, str) for s in inner["body_statements"] + inner["imports"])
    for v in inner["variables"]:
        assert {"name", "type"} <= set(v) <= {"name", "type", "mutable"}
        assert isinstance(v["name"], str) and isinstance(v["type"], str)
        assert isinstance(v.get("mutable", False), bool)


def test_wrapper_regression(wrapper):
    inner = b'{"body_statements":["x"],"variables":[],"imports":[]}'
    m = grammask.Matcher(wrapper)
    assert not m.accept_bytes(inner)
    assert "not allowed" in m.get_error()
    assert m.output == b""
    assert m.accept_bytes(b'{"implementation":' + inner + b"}")
    assert m.can_terminate()
    for seed in range(3):
        out = decode(grammask.Matcher(wrapper), np.random.default_rng(seed))
        check_wrapper_instance(json.loads(out))


def test_check_wrapper_instance_rejects_the_incident():
    with pytest.raises(AssertionError):
        check_wrapper_instance({"body_statements": ["x"], "variables": [], "imports": []})


def readme_snippet() -> str:
    text = (REPO / "README.md").read_text()
    m = re.search(r"<!-- python-snippet -->\s*```python\n(.*?)```", text, re.S)
    assert m, "README has no python snippet"
    return m.group(1)


def test_readme_snippet_decodes_the_wrapper_schema():
    code = readme_snippet()
    assert len(code.strip().splitlines()) <= 8
    scope: dict = {}
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        exec(compile(code, "README.md", "exec"), scope)
    finally:
        os.chdir(cwd)
    check_wrapper_instance(json.loads(scope["m"].output))


def fixture_paths():
    d = os.environ.get("GRAMMASK_PY_FIXTURE")
    if not d:
        pytest.skip("GRAMMASK_PY_FIXTURE not set: run through `cargo test --release --test python_package`")
    paths = json.loads((Path(d) / "paths.json").read_text())
    masks = np.fromfile(Path(d) / "masks.bin", dtype="<u4").view(np.int32)
    return paths, masks


def test_masks_equal_the_crates_on_recorded_paths():
    paths, masks = fixture_paths()
    assert len(paths) >= 10
    vocabs: dict[str, grammask.Vocabulary] = {}
    steps = 0
    for p in paths:
        label = p["vocab"]
        if label not in vocabs:
            vocabs[label] = (
                grammask.Vocabulary.from_tiktoken(label)
                if not label.endswith(".json")
                else grammask.Vocabulary.from_tokenizer_json(label)
            )
        vocab = vocabs[label]
        words = p["words"]
        assert vocab.mask_words == words
        g = grammask.Compiler(vocab, whitespace=p["whitespace"]).compile_json_schema(p["schema"])
        assert g.fingerprint == p["fingerprint"], p["name"]
        m = grammask.Matcher(g)
        row = np.zeros((2, words), dtype=np.int32)
        off = p["offset"]
        for i, t in enumerate(p["tokens"] + [None]):
            assert m.fill_next_token_bitmask(row, 1)
            want = masks[off + i * words : off + (i + 1) * words]
            assert np.array_equal(row[1], want), f"{p['name']} on {label}: mask {i} differs"
            assert not row[0].any()
            if t is not None:
                assert m.accept_token(t), (p["name"], i, m.get_error())
            steps += 1
    assert steps > len(paths)


def test_rollback_and_jump_forward(wrapper, cl100k):
    m = grammask.Matcher(wrapper)
    forced = m.forced_bytes()
    assert forced == b'{"implementation":{"'
    toks = m.forced_tokens()
    assert b"".join(cl100k.token_bytes(t) for t in toks) == forced[: len(b"".join(cl100k.token_bytes(t) for t in toks))]
    assert len(toks) >= 1
    assert m.accept_tokens(toks) == len(toks)
    # Record masks along a random path, then roll back and compare.
    rng = np.random.default_rng(7)
    size = cl100k.size
    rows = []
    taken = []
    bm = grammask.allocate_token_bitmask(1, size)
    for _ in range(12):
        m.fill_next_token_bitmask(bm)
        rows.append(bm[0].copy())
        t = int(rng.choice(allowed(bm[0], size)))
        assert m.accept_token(t)
        taken.append(t)
    out = m.output
    assert m.rollback(5)
    assert m.output == out[: len(m.output)]
    m.fill_next_token_bitmask(bm)
    assert np.array_equal(bm[0], rows[-5])
    # validate_tokens answers without moving the matcher.
    steps = m.num_steps
    assert m.validate_tokens(taken[-5:] + [size + 5]) == 5
    assert m.num_steps == steps
    assert m.accept_tokens(taken[-5:]) == 5
    assert m.output == out
    # Too far back is a reported failure, not an exception...
    assert not m.rollback(10**6)
    assert "roll" in m.get_error().lower()
    assert m.is_stopped() and not m.is_terminated()
    # ...unless asked for.
    strict = wrapper.matcher(raise_on_error=True)
    with pytest.raises(grammask.MatchError):
        strict.rollback(1)
    with pytest.raises(grammask.MatchError):
        strict.accept_bytes(b"[")
    # A copy is independent.
    c = copy.copy(m)
    assert c.rollback(3) and c.output != out
    assert m.output == out
    m.reset()
    assert m.output == b"" and not m.is_error() and not m.is_stopped()


def test_batch_rows_equal_single_fills(wrapper, cl100k):
    rng = np.random.default_rng(3)
    size = cl100k.size
    matchers = []
    for k in range(8):
        m = grammask.Matcher(wrapper)
        bm = grammask.allocate_token_bitmask(1, size)
        for _ in range(k * 3):
            m.fill_next_token_bitmask(bm)
            m.accept_token(int(rng.choice(allowed(bm[0], size))))
        matchers.append(m)
    single = np.zeros((8, cl100k.mask_words), dtype=np.int32)
    for i, m in enumerate(matchers):
        m.fill_next_token_bitmask(single, i)
    batch = np.full((8, cl100k.mask_words + 2), -1, dtype=np.int32)
    assert grammask.fill_next_token_bitmask_batch(matchers, batch) == [True] * 8
    assert np.array_equal(batch[:, : cl100k.mask_words], single)
    assert not batch[:, cl100k.mask_words :].any()
    rev = np.zeros((10, cl100k.mask_words), dtype=np.int32)
    grammask.fill_next_token_bitmask_batch(matchers, rev, indices=list(range(9, 1, -1)))
    assert np.array_equal(rev[9:1:-1], single)
    with pytest.raises(ValueError):
        grammask.fill_next_token_bitmask_batch(matchers[:2], rev, indices=[3, 3])
    with pytest.raises(ValueError):
        grammask.fill_next_token_bitmask_batch([matchers[0], matchers[0]], rev)
    with pytest.raises(IndexError):
        grammask.fill_next_token_bitmask_batch(matchers[:1], rev, indices=[10])


def test_bad_input_raises_the_right_exception(wrapper, cl100k):
    m = grammask.Matcher(wrapper)
    w = cl100k.mask_words
    for bad in [
        np.zeros((1, w), dtype=np.int64),
        np.zeros((1, w), dtype=np.float32),
        np.zeros((1, w - 1), dtype=np.int32),
        np.zeros((1, 1, w), dtype=np.int32),
        np.zeros((1, 2 * w), dtype=np.int32)[:, ::2],
        [0] * w,
    ]:
        with pytest.raises(ValueError):
            m.fill_next_token_bitmask(bad)
    ro = np.zeros((1, w), dtype=np.int32)
    ro.setflags(write=False)
    with pytest.raises(ValueError, match="read-only"):
        m.fill_next_token_bitmask(ro)
    with pytest.raises(IndexError):
        m.fill_next_token_bitmask(np.zeros((2, w), dtype=np.int32), 2)
    compiler = grammask.Compiler(cl100k)
    with pytest.raises(grammask.CompileError) as e:
        compiler.compile_json_schema({"type": "object", "properties": {"a": {"type": 5}}})
    assert (e.value.kind, e.value.keyword, e.value.pointer) == ("InvalidSchema", "type", "/properties/a")
    with pytest.raises(grammask.CompileError) as e:
        compiler.compile_json_schema("{not json")
    assert e.value.kind == "MalformedJson"
    unsupported = {"type": "object", "properties": {"a": {"type": "string", "pattern": "(?=x)"}}}
    with pytest.raises(grammask.CompileError) as e:
        compiler.compile_json_schema(unsupported)
    assert e.value.kind == "Unsupported" and e.value.pointer == "/properties/a"
    annotated = compiler.compile_json_schema({"type": "object", "properties": {"n": {"type": "string", "format": "int64"}}})
    assert annotated.annotations == [{"keyword": "format:int64", "pointer": "/properties/n"}]
    lenient = grammask.Compiler(cl100k, strict=False).compile_json_schema(unsupported)
    assert lenient.relaxations == [{"keyword": e.value.keyword, "pointer": "/properties/a"}]
    big = {"enum": [f"value-{i}" for i in range(100000)]}
    with pytest.raises(grammask.CompileError, match="deadline") as e:
        grammask.Compiler(cl100k, deadline_ms=5).compile_json_schema(big)
    assert e.value.kind == "LimitExceeded"
    with pytest.raises(ValueError):
        grammask.Compiler(cl100k, whitespace="lots")
    with pytest.raises(ValueError):
        grammask.Compiler(cl100k, property_order="random")
    assert not m.accept_token(cl100k.size + 5)
    assert "out of range" in m.get_error()
    assert not m.accept_token(-1)
    assert m.accept_token(cl100k.stop_token_ids[0]) is False
    assert "stop" in m.get_error().lower()
    with pytest.raises(grammask.VocabError):
        grammask.Vocabulary.from_tiktoken("nope")
    with pytest.raises(grammask.VocabError):
        grammask.Vocabulary.from_tokenizer_json("/nonexistent/tokenizer.json")
    with pytest.raises(TypeError):
        grammask.Vocabulary.from_tokenizer(object())


def test_two_threads_share_one_grammar(wrapper):
    def run(seeds, out):
        for s in seeds:
            out[s] = decode(wrapper.matcher(), np.random.default_rng(s))

    expected: dict = {}
    run(range(6), expected)
    got: dict = {}
    threads = [threading.Thread(target=run, args=(range(i, 6, 2), got)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == expected
    for out in got.values():
        check_wrapper_instance(json.loads(out))


def test_compile_regex(cl100k):
    g = grammask.Compiler(cl100k).compile_regex(r"\d{3}-\d{4}")
    out = decode(g.matcher(), np.random.default_rng(5))
    assert re.fullmatch(r"[0-9]{3}-[0-9]{4}", out.decode())
    m = g.matcher()
    assert not m.accept_bytes(b"12a")
    with pytest.raises(grammask.CompileError) as e:
        grammask.Compiler(cl100k).compile_regex("(?=a)b")
    assert (e.value.kind, e.value.keyword) == ("Unsupported", "regex")


def test_compile_gbnf(cl100k):
    gbnf = 'root ::= item ("," item)*\nitem ::= [a-z]+ | "\\"" [^"]* "\\""\n'
    g = grammask.Compiler(cl100k).compile_gbnf(gbnf)
    out = decode(g.matcher(), np.random.default_rng(3)).decode()
    assert re.fullmatch(r'(?:[a-z]+|"[^"]*")(?:,(?:[a-z]+|"[^"]*"))*', out, re.S), out
    assert not g.matcher().accept_bytes(b"a,,")
    with pytest.raises(grammask.CompileError) as e:
        grammask.Compiler(cl100k).compile_gbnf('root ::= "a"\nx ::= root x | y\n')
    assert (e.value.kind, e.value.keyword, e.value.line, e.value.column) == ("InvalidSchema", "gbnf", 2, 16)
    with pytest.raises(grammask.CompileError) as e:
        grammask.Compiler(cl100k).compile_json_schema('{"type": 5}')
    assert (e.value.line, e.value.column) == (None, None)


def test_compile_structural_tag(cl100k):
    weather = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 20}},
               "required": ["city"], "additionalProperties": False}
    request = {"structures": [{"begin": "<function=get_weather>", "schema": weather, "end": "</function>"}],
               "triggers": ["<function="]}
    g = grammask.Compiler(cl100k).compile_structural_tag(request)
    m = g.matcher()
    assert m.accept_bytes(b"Let me look. <function=get_weather>")
    # A random model inside the tag, until the tag closes.
    rng, bitmask = np.random.default_rng(4), grammask.allocate_token_bitmask(1, cl100k.size)
    for _ in range(2000):
        if b"</function>" in m.output:
            break
        assert m.fill_next_token_bitmask(bitmask, 0)
        assert m.accept_token(int(rng.choice(allowed(bitmask[0], cl100k.size))))
    assert m.can_terminate()
    out = m.output.decode()
    body = out[len("Let me look. <function=get_weather>"):]
    end = body.index("</function>")
    assert "city" in json.loads(body[:end])
    assert not g.matcher().accept_bytes(b"<function=get_time>")
    with pytest.raises(grammask.CompileError) as e:
        grammask.Compiler(cl100k).compile_structural_tag(json.dumps(
            {"structures": [{"begin": "<a>", "schema": {"type": 5}, "end": "</a>"}], "triggers": ["<a"]}))
    assert (e.value.kind, e.value.pointer) == ("InvalidSchema", "/structures/0/schema")


def test_fingerprint_is_stable_and_discriminating(cl100k):
    c = grammask.Compiler(cl100k)
    a = c.compile_json_schema('{"type":"object","properties":{"x":{"type":"integer"}}}')
    b = c.compile_json_schema({"properties": {"x": {"type": "integer"}}, "type": "object"})
    assert a.fingerprint == b.fingerprint and len(a.fingerprint) == 32
    assert c.compile_json_schema({"type": "object"}).fingerprint != a.fingerprint
    flex = grammask.Compiler(cl100k, whitespace=1).compile_json_schema({"properties": {"x": {"type": "integer"}}, "type": "object"})
    assert flex.fingerprint != a.fingerprint


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_apply_token_bitmask_inplace(dtype):
    rng = np.random.default_rng(1)
    vocab = 1000
    bitmask = rng.integers(-(2**31), 2**31 - 1, size=(3, (vocab + 31) // 32), dtype=np.int32)
    logits = rng.standard_normal((3, vocab)).astype(dtype)
    want = logits.copy()
    for r in range(3):
        keep = np.zeros(vocab, dtype=bool)
        keep[allowed(bitmask[r], vocab)] = True
        want[r, ~keep] = -np.inf
    got = logits.copy()
    grammask.apply_token_bitmask_inplace(got, bitmask)
    assert np.array_equal(got, want)
    one = logits[1].copy()
    grammask.apply_token_bitmask_inplace(one, bitmask[1])
    assert np.array_equal(one, want[1])
    some = logits.copy()
    grammask.apply_token_bitmask_inplace(some, bitmask, indices=[2])
    assert np.array_equal(some[2], want[2]) and np.array_equal(some[:2], logits[:2])
    with pytest.raises((ValueError, TypeError)):
        grammask.apply_token_bitmask_inplace(logits.astype(np.float64), bitmask)


def test_vocabulary_from_token_bytes_and_tokenizer():
    v = grammask.Vocabulary.from_token_bytes([b"{", b"}", b'"a"', b":", b"1", None, b"<eos>"], [6], size=40)
    assert (v.size, v.mask_words, v.stop_token_ids) == (40, 2, [6])
    g = grammask.Compiler(v).compile_json_schema(
        {"type": "object", "properties": {"a": {"const": 1}}, "required": ["a"], "additionalProperties": False}
    )
    m = g.matcher()
    assert m.accept_tokens([0, 2, 3, 4, 1, 6]) == 6 and m.is_terminated()
    if not LLAMA3.exists():
        print(f"notice: {LLAMA3} absent; from_tokenizer is checked on the toy vocabulary only")
        return
    tokenizers = pytest.importorskip("tokenizers")
    tok = tokenizers.Tokenizer.from_file(str(LLAMA3))
    a = grammask.Vocabulary.from_tokenizer(tok)
    b = grammask.Vocabulary.from_tokenizer_json(LLAMA3)
    assert a.size == b.size
    assert all(a.token_bytes(i) == b.token_bytes(i) for i in range(0, a.size, 7))


try:
    import torch  # noqa: F401

    HAVE_TORCH = True
except ImportError:
    HAVE_TORCH = False

if HAVE_TORCH:

    def test_torch_cpu_tensors(wrapper, cl100k):
        import torch

        bm = torch.zeros((2, cl100k.mask_words), dtype=torch.int32)
        m = grammask.Matcher(wrapper)
        assert m.fill_next_token_bitmask(bm, 1)
        ref = np.zeros(cl100k.mask_words, dtype=np.int32)
        grammask.Matcher(wrapper).fill_next_token_bitmask(ref)
        assert np.array_equal(bm[1].numpy(), ref)
        for dtype in (torch.float32, torch.float16, torch.bfloat16):
            logits = torch.zeros((2, cl100k.size), dtype=dtype)
            grammask.apply_token_bitmask_inplace(logits, bm)
            assert torch.isinf(logits[0]).all()
            assert (logits[1] == 0).sum().item() == len(allowed(ref, cl100k.size))
