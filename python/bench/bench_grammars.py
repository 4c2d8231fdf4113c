"""grammask beside llguidance on grammars: llama.cpp's GBNF files, Lark files
and regexes.

Each GBNF grammar goes to grammask as written (`Compiler.compile_gbnf`) and to
llguidance through its own converter (`llguidance.gbnf_to_lark`); each Lark
grammar to `compile_lark` and `grammar_from_lark`; each regex to
`compile_regex` and `grammar_from_regex`. Token sequences are random walks
through each engine's own masks (a uniform "model" over the allowed tokens,
ending when the grammar may end with probability 1/8 per step), so both
engines are timed on paths either could take. Every sequence is then fed to
both engines the way a vLLM/SGLang backend does (fill a row of an int32
numpy bitmask, check the bit, accept the token); the engines alternate which
goes first per sequence. A token one engine allows and the other refuses
ends the sequence and is counted as a disagreement (the two read some
grammars differently: llguidance lexes the terminals its converter makes).

    pip install ./python llguidance tiktoken
    python python/bench/bench_grammars.py [--walks 20] [--tokens 120] [--tokenizer PATH]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

import grammask
from bench_llguidance import REPO, load, pct

REGEXES = [
    r"\d{3}-\d{3}-\d{4}",
    r"[A-Z][a-z]+( [A-Z][a-z]+)*",
    r"(https?://)?[a-z0-9.-]+\.[a-z]{2,6}(/[a-z0-9._~-]*)*",
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z",
    r"(\w+@\w+\.com)(, \w+@\w+\.com){0,4}",
    r"[01]{8}( [01]{8})*",
]


def walk(step_mask, accept, can_end, rng, words, max_tokens):
    """A random walk: token ids taken uniformly among the allowed ones."""
    bm = np.zeros((1, words), dtype=np.int32)
    out = []
    for _ in range(max_tokens):
        if can_end() and rng.random() < 0.125:
            break
        step_mask(bm)
        bits = np.unpackbits(bm[0].view(np.uint8), bitorder="little")
        ids = np.flatnonzero(bits)
        if len(ids) == 0:
            break
        t = int(rng.choice(ids))
        out.append(t)
        if not accept(t):
            break
    return out


def engines(kind, text, compiler, lt):
    """(grammask grammar, llguidance grammar text) or None if one refuses."""
    import llguidance
    from llguidance.gbnf_to_lark import gbnf_to_lark

    try:
        g = {"gbnf": compiler.compile_gbnf, "lark": compiler.compile_lark, "regex": compiler.compile_regex}[kind](text)
    except grammask.CompileError as e:
        print(f"  grammask refuses: {e}")
        return None
    try:
        lg = {
            "gbnf": lambda t: llguidance.LLMatcher.grammar_from_lark(gbnf_to_lark(t)),
            "lark": llguidance.LLMatcher.grammar_from_lark,
            "regex": llguidance.LLMatcher.grammar_from_regex,
        }[kind](text)
        m = llguidance.LLMatcher(lt, lg, log_level=0)
        if m.is_error():
            print(f"  llguidance refuses: {m.get_error()}")
            return None
    except Exception as e:  # noqa: BLE001 - the converter raises plain errors
        print(f"  llguidance refuses: {e}")
        return None
    return g, lg


def timed_run(seq, g, lg, lt, words, order):
    """Masks along `seq` in both engines: (grammask ns, llguidance ns, agreed)."""
    import llguidance
    import llguidance.numpy as lnp

    gm = grammask.Matcher(g)
    lm = llguidance.LLMatcher(lt, lg, log_level=0)
    bg = np.zeros((1, words), dtype=np.int32)
    bl = np.zeros((1, words), dtype=np.int32)
    g_ns, l_ns = [], []
    for t in seq:
        for who in order:
            t0 = time.perf_counter_ns()
            if who == "g":
                gm.fill_next_token_bitmask(bg, 0)
                g_ns.append(time.perf_counter_ns() - t0)
            else:
                lnp.fill_next_token_bitmask(lm, bl, 0)
                l_ns.append(time.perf_counter_ns() - t0)
        ga = (bg[0, t >> 5] >> (t & 31)) & 1
        la = (bl[0, t >> 5] >> (t & 31)) & 1
        if not (ga and la):
            return g_ns, l_ns, (bytes(gm.output), t, "grammask" if not ga else "llguidance")
        gm.accept_token(t)
        lm.consume_token(t)
    return g_ns, l_ns, None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", default="cl100k")
    ap.add_argument("--walks", type=int, default=20, help="walks per engine per grammar")
    ap.add_argument("--tokens", type=int, default=120, help="longest walk")
    ap.add_argument("--verbose", action="store_true", help="print each disagreement")
    shared = Path(os.environ.get("GRAMMASK_SHARED_CORPORA", REPO.parent / "shared" / "corpora"))
    ap.add_argument("--gbnf", default=str(shared / "grammars" / "gbnf"))
    ap.add_argument("--lark", default=str(shared / "grammars" / "lark"))
    a = ap.parse_args()

    import llguidance
    import llguidance.numpy as lnp

    gv, lt, _ = load(a.tokenizer)
    words = gv.mask_words
    compiler = grammask.Compiler(gv)
    inputs = [("gbnf", p.name, p.read_text()) for p in sorted(Path(a.gbnf).glob("*.gbnf"))]
    inputs += [("lark", p.name, p.read_text()) for p in sorted(Path(a.lark).glob("*.lark"))]
    inputs += [("regex", r, r) for r in REGEXES]
    rng = np.random.default_rng(11)
    all_g, all_l = [], []
    rows = []
    t_all = time.time()
    for kind, name, text in inputs:
        print(f"{kind} {name}", flush=True)
        e = engines(kind, text, compiler, lt)
        if e is None:
            continue
        g, lg = e
        seqs = []
        for _ in range(a.walks):
            m = grammask.Matcher(g)
            seqs.append(walk(lambda bm: m.fill_next_token_bitmask(bm, 0), m.accept_token, m.can_terminate,
                             rng, words, a.tokens))
            lm = llguidance.LLMatcher(lt, lg, log_level=0)
            seqs.append(walk(lambda bm: lnp.fill_next_token_bitmask(lm, bm, 0), lm.consume_token,
                             lm.is_accepting, rng, words, a.tokens))
        g_ns, l_ns, disagree = [], [], 0
        for i, s in enumerate(seqs):
            gn, ln, ok = timed_run(s, g, lg, lt, words, "gl" if i % 2 == 0 else "lg")
            g_ns += gn
            l_ns += ln
            if ok is not None:
                disagree += 1
                if a.verbose:
                    print(f"  {ok[2]} refuses token {ok[0]!r} + {gv.token_bytes(ok[1])!r}")
        all_g += g_ns
        all_l += l_ns
        rows.append((kind, name, len(g_ns), np.mean(g_ns), np.mean(l_ns), pct(g_ns, 0.99), pct(l_ns, 0.99),
                     max(g_ns), max(l_ns), disagree, len(seqs)))

    print(f"\n{len(rows)} grammars on {gv.name}, {a.walks} walks per engine each, {time.time() - t_all:.0f} s\n")
    print("| grammar | masks | mean µs g / l | p99 µs g / l | max µs g / l | disagreements |")
    print("|---|---|---|---|---|---|")
    for kind, name, n, gm_, lm_, g99, l99, gx, lx, dis, ns in rows:
        print(f"| {kind} `{name}` | {n} | {gm_ / 1e3:.1f} / {lm_ / 1e3:.1f} | {g99 / 1e3:.1f} / {l99 / 1e3:.1f} | "
              f"{gx / 1e3:.0f} / {lx / 1e3:.0f} | {dis}/{ns} |")
    print("\n| all masks | grammask | llguidance | ratio |")
    print("|---|---|---|---|")
    gmean, lmean = float(np.mean(all_g)), float(np.mean(all_l))
    print(f"| mean µs | {gmean / 1e3:.1f} | {lmean / 1e3:.1f} | {gmean / lmean:.2f}× |")
    for name, p in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999), ("max", 1.0)]:
        gx, lx = pct(all_g, p), pct(all_l, p)
        print(f"| {name} µs | {gx / 1e3:.1f} | {lx / 1e3:.1f} | {gx / lx:.2f}× |")


if __name__ == "__main__":
    main()
