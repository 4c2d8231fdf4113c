"""grammask's Python package beside llguidance's, on MaskBench, from Python.

Both engines get the same schemas, the same canonical token sequences (each
instance serialized like `json.dumps`, tokenized by the tokenizer itself) and
the same call pattern a vLLM/SGLang backend uses: compile, make a matcher per
instance, and per token fill a row of an int32 numpy bitmask, check the bit,
accept the token. Per schema the engines run one after the other, the order
alternating, so machine noise hits both alike. Mask times are measured
around the Python call (`time.perf_counter_ns`), on the schemas both compile.

Also measured: the Python layer's overhead (grammask's Python p50 minus the
p50 of the time spent inside its Rust call, on the same calls), and a batch
of 64 rows filled from Python against the same batch timed inside Rust.

    pip install ./python llguidance tiktoken
    python python/bench/bench_llguidance.py --every 10
    python python/bench/bench_llguidance.py --every 10 --tokenizer ../shared/corpora/tokenizers/llama3_1/tokenizer.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

import grammask
import grammask._grammask as native

REPO = Path(__file__).resolve().parents[2]


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


def load(tokenizer: str):
    """(grammask vocabulary, llguidance tokenizer, encode function)."""
    import llguidance

    if tokenizer in ("cl100k", "cl100k_base", "o200k", "o200k_base"):
        import llguidance.tiktoken
        import tiktoken

        import tiktoken_ext.openai_public as openai_public

        name = tokenizer if tokenizer.endswith("_base") else tokenizer + "_base"
        gv = grammask.Vocabulary.from_tiktoken(name)
        # tiktoken downloads its rank files; grammask ships them (from the
        # tiktoken-rs crate), so build the Encoding from those ranks and
        # tiktoken's own pattern and special tokens: same ids, same bytes.
        params = getattr(openai_public, name).__wrapped__() if hasattr(getattr(openai_public, name), "__wrapped__") else None
        if params is None:
            real = openai_public.load_tiktoken_bpe
            openai_public.load_tiktoken_bpe = lambda *args, **kw: {}
            try:
                params = getattr(openai_public, name)()
            finally:
                openai_public.load_tiktoken_bpe = real
        specials = set(params["special_tokens"].values())
        params["mergeable_ranks"] = {
            gv.token_bytes(i): i for i in range(gv.size) if i not in specials and gv.token_bytes(i)
        }
        enc = tiktoken.Encoding(**params)
        lt = llguidance.tiktoken.lltokenizer_from_encoding(enc, n_vocab=gv.size)
        return gv, lt, enc.encode_ordinary
    import tokenizers

    tok = tokenizers.Tokenizer.from_file(tokenizer)
    gv = grammask.Vocabulary.from_tokenizer_json(tokenizer)
    # llguidance loads the same tokenizer.json itself (a path), with the
    # same stop tokens.
    lt = llguidance.LLTokenizer(tokenizer, n_vocab=gv.size, eos_token=gv.stop_token_ids)
    return gv, lt, lambda s: tok.encode(s, add_special_tokens=False).ids


def run_grammask(compiler, schema_text, tests, words):
    t0 = time.perf_counter_ns()
    try:
        g = compiler.compile_json_schema(schema_text)
    except grammask.CompileError:
        return None
    bm = np.zeros((1, words), dtype=np.int32)
    grammask.Matcher(g).fill_next_token_bitmask(bm, 0)
    first = time.perf_counter_ns() - t0
    outer, inner, right = [], [], 0
    for toks, valid in tests:
        m = grammask.Matcher(g)
        ok = True
        fill = m._fill_next_token_bitmask_timed
        for t in toks:
            t1 = time.perf_counter_ns()
            ns = fill(bm, 0)
            outer.append(time.perf_counter_ns() - t1)
            inner.append(ns)
            if not (bm[0, t >> 5] >> (t & 31)) & 1 or not m.accept_token(t):
                ok = False
                break
        right += (ok and m.can_terminate()) == valid
    return outer, inner, first, right


def run_llguidance(lt, schema_text, tests, words):
    import llguidance
    import llguidance.numpy as lnp

    t0 = time.perf_counter_ns()
    grm = llguidance.LLMatcher.grammar_from_json_schema(schema_text)
    proto = llguidance.LLMatcher(lt, grm, log_level=0)
    if proto.is_error():
        return None
    bm = np.zeros((1, words), dtype=np.int32)
    lnp.fill_next_token_bitmask(proto.deep_copy(), bm, 0)
    first = time.perf_counter_ns() - t0
    if proto.is_error():
        return None
    ns, right = [], 0
    for toks, valid in tests:
        m = proto.deep_copy()
        ok = True
        for t in toks:
            t1 = time.perf_counter_ns()
            lnp.fill_next_token_bitmask(m, bm, 0)
            ns.append(time.perf_counter_ns() - t1)
            if not (bm[0, t >> 5] >> (t & 31)) & 1 or not m.consume_token(t):
                ok = False
                break
        right += (ok and m.is_accepting()) == valid
    return ns, first, right


def batch_ratio(matchers, words, reps=200):
    """Python-side time of a 64-row batch over the Rust-side time of it."""
    bm = np.zeros((len(matchers), words), dtype=np.int32)
    py, rust = [], []
    for _ in range(reps):
        rust.append(native._fill_batch_timed(matchers, bm))
        t = time.perf_counter_ns()
        grammask.fill_next_token_bitmask_batch(matchers, bm)
        py.append(time.perf_counter_ns() - t)
    return pct(py, 0.5), pct(rust, 0.5)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", default="cl100k")
    ap.add_argument("--every", type=int, default=10)
    ap.add_argument("--limit", type=int, default=10**9)
    shared = Path(os.environ.get("GRAMMASK_SHARED_CORPORA", REPO.parent / "shared" / "corpora"))
    ap.add_argument("--data", default=str(shared / "maskbench" / "data"))
    a = ap.parse_args()

    gv, lt, encode = load(a.tokenizer)
    words = gv.mask_words
    compiler = grammask.Compiler(gv, whitespace=1)
    files = sorted(Path(a.data).glob("*.json"))[:: max(1, a.every)][: a.limit]
    print(f"{len(files)} files, vocabulary {gv.name} ({gv.size} ids)", flush=True)
    g_ns, g_inner, l_ns, g_first, l_first = [], [], [], [], []
    g_ok = l_ok = both = g_right = l_right = 0
    sample_matchers = []
    t_all = time.time()
    for fi, f in enumerate(files):
        if fi % 100 == 0:
            print(f"  {fi}/{len(files)} files, {time.time() - t_all:.0f} s", flush=True)
        doc = json.loads(f.read_text())
        schema_text = json.dumps(doc["schema"])
        tests = [(encode(json.dumps(t["data"], ensure_ascii=False)), bool(t["valid"])) for t in doc.get("tests", [])]
        g = l = None
        for turn in range(2):
            if (turn + fi) % 2 == 0:
                g = run_grammask(compiler, schema_text, tests, words)
            else:
                try:
                    l = run_llguidance(lt, schema_text, tests, words)
                except Exception:
                    l = None
        g_ok += g is not None
        l_ok += l is not None
        if g is not None:
            g_right += g[3]
        if l is not None:
            l_right += l[2]
        if g is not None and l is not None:
            both += 1
            g_ns += g[0]
            g_inner += g[1]
            g_first.append(g[2])
            l_ns += l[0]
            l_first.append(l[1])
            if len(sample_matchers) < 64 and tests:
                try:
                    m = grammask.Matcher(compiler.compile_json_schema(schema_text))
                    m.accept_tokens(tests[0][0][: len(tests[0][0]) // 2])
                    sample_matchers.append(m)
                except grammask.CompileError:
                    pass

    print(f"\n{len(files)} MaskBench files (every {a.every}th) on {gv.name}, {time.time() - t_all:.0f} s")
    print(f"schemas compiled: grammask {g_ok}, llguidance {l_ok}, both {both}")
    print(f"instances judged right (compiled schemas): grammask {g_right}, llguidance {l_right}")
    print(f"\nOn the {both} schemas both compile ({len(g_ns)} vs {len(l_ns)} masks), times from Python:\n")
    print("| metric | grammask | llguidance | ratio |")
    print("|---|---|---|---|")

    def row(name, gx, lx, scale):
        print(f"| {name} | {gx / scale:.1f} | {lx / scale:.1f} | {gx / lx:.2f}× |")

    row("mask µs mean", float(np.mean(g_ns)), float(np.mean(l_ns)), 1e3)
    for name, p in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999), ("max", 1.0)]:
        row(f"mask µs {name}", pct(g_ns, p), pct(l_ns, p), 1e3)
    for name, p in [("p50", 0.5), ("p99", 0.99), ("max", 1.0)]:
        row(f"compile→first mask ms {name}", pct(g_first, p), pct(l_first, p), 1e6)
    over = pct(g_ns, 0.5) - pct(g_inner, 0.5)
    print(f"\nPython layer: p50 {pct(g_ns, 0.5) / 1e3:.2f} µs from Python, {pct(g_inner, 0.5) / 1e3:.2f} µs inside Rust: "
          f"overhead {over / 1e3:.2f} µs")
    if len(sample_matchers) >= 2:
        while len(sample_matchers) < 64:
            sample_matchers.append(sample_matchers[len(sample_matchers) % 8].copy())
        py, rust = batch_ratio(sample_matchers, words)
        print(f"batch of 64 rows: {py / 1e3:.1f} µs from Python, {rust / 1e3:.1f} µs inside Rust "
              f"(fill_masks_batch): {py / rust:.2f}×")


if __name__ == "__main__":
    main()
