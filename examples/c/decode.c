/* Decodes one JSON document under a JSON Schema with a seeded random
 * "model" that samples uniformly among the tokens the mask allows: the loop
 * an inference server in C runs, minus the neural network.
 *
 *   decode SCHEMA.json [TOKENIZER.json|cl100k_base] [SEED]
 *
 * Prints the checks it made on bad input, then `output: <document>`.
 * Exits non-zero on any failure. Built and run by tests/c_abi.rs. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grammask.h"

static uint64_t rng_state;

static uint64_t next_random(void) { /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    buf[n] = 0;
    *len = (size_t)n;
    return buf;
}

#define CHECK(cond, ...)                                   \
    do {                                                   \
        if (!(cond)) {                                     \
            fprintf(stderr, "FAILED: " __VA_ARGS__);       \
            fprintf(stderr, "\n");                         \
            return 1;                                      \
        }                                                  \
    } while (0)

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s SCHEMA.json [TOKENIZER.json|cl100k_base] [SEED]\n", argv[0]);
        return 2;
    }
    const char *vocab_name = argc > 2 ? argv[2] : "cl100k_base";
    rng_state = argc > 3 ? strtoull(argv[3], NULL, 10) | 1 : 42;
    char err[512];

    GmVocab *vocab = strstr(vocab_name, ".json") ? gm_vocab_from_tokenizer_json(vocab_name, err, sizeof err)
                                                 : gm_vocab_from_tiktoken(vocab_name, err, sizeof err);
    CHECK(vocab, "vocabulary: %s", err);
    size_t words = gm_vocab_mask_words(vocab);

    /* Bad input is an error code or message, never a crash. */
    const char *bad = "{\"type\": \"object\", \"properties\": {\"a\": {\"type\": 5}}}";
    CHECK(!gm_compile_json_schema(vocab, bad, strlen(bad), NULL, err, sizeof err), "bad schema compiled");
    printf("check: bad schema -> %s\n", err);
    CHECK(!gm_compile_json_schema(NULL, bad, strlen(bad), NULL, err, sizeof err), "null vocab compiled");
    CHECK(gm_matcher_fill_next_token_bitmask(NULL, NULL, 0) == GM_STATUS_NULL_ARGUMENT, "null matcher");

    /* A regex request: the whole output must match. */
    const char *re = "[0-9]{3}-[0-9]{4}";
    GmGrammar *rg = gm_compile_regex(vocab, re, strlen(re), NULL, err, sizeof err);
    CHECK(rg, "regex: %s", err);
    GmMatcher *rm = gm_matcher_new(rg);
    CHECK(gm_matcher_accept_bytes(rm, (const uint8_t *)"555-12", 6) == GM_STATUS_OK, "regex prefix");
    CHECK(gm_matcher_accept_bytes(rm, (const uint8_t *)"x", 1) == GM_STATUS_REJECTED, "regex accepted x");
    CHECK(!gm_matcher_can_terminate(rm), "regex ended early");
    printf("check: regex -> %s\n", gm_matcher_last_error(rm));
    gm_matcher_free(rm);
    gm_grammar_free(rg);

    /* A GBNF request (llama.cpp's grammar format). */
    const char *gbnf = "root ::= \"- \" item (\"\\n- \" item)*\nitem ::= [a-z]+\n";
    GmGrammar *gg = gm_compile_gbnf(vocab, gbnf, strlen(gbnf), NULL, err, sizeof err);
    CHECK(gg, "gbnf: %s", err);
    GmMatcher *gm = gm_matcher_new(gg);
    CHECK(gm_matcher_accept_bytes(gm, (const uint8_t *)"- ab\n- c", 8) == GM_STATUS_OK, "gbnf list");
    CHECK(gm_matcher_can_terminate(gm), "gbnf list cannot end");
    CHECK(gm_matcher_accept_bytes(gm, (const uint8_t *)"1", 1) == GM_STATUS_REJECTED, "gbnf accepted a digit");
    gm_matcher_free(gm);
    gm_grammar_free(gg);
    /* A Lark request (llguidance's dialect): lexemes are greedy. */
    const char *lark = "start: NAME (\",\" NAME)*\nNAME: /[a-z]+/\n%ignore \" \"\n";
    GmGrammar *lg = gm_compile_lark(vocab, lark, strlen(lark), NULL, err, sizeof err);
    CHECK(lg, "lark: %s", err);
    GmMatcher *lm = gm_matcher_new(lg);
    CHECK(gm_matcher_accept_bytes(lm, (const uint8_t *)"ab, c ,d", 8) == GM_STATUS_OK, "lark list");
    CHECK(gm_matcher_can_terminate(lm), "lark list cannot end");
    CHECK(gm_matcher_accept_bytes(lm, (const uint8_t *)"1", 1) == GM_STATUS_REJECTED, "lark accepted a digit");
    gm_matcher_free(lm);
    gm_grammar_free(lg);
    /* A tool-call request: free text, tags with JSON bodies. */
    const char *tags = "{\"structures\": [{\"begin\": \"<f=w>\", \"end\": \"</f>\", "
                       "\"schema\": {\"type\": \"integer\"}}], \"triggers\": [\"<f=\"]}";
    GmGrammar *tg = gm_compile_structural_tag(vocab, tags, strlen(tags), NULL, err, sizeof err);
    CHECK(tg, "structural tag: %s", err);
    GmMatcher *tm = gm_matcher_new(tg);
    CHECK(gm_matcher_accept_bytes(tm, (const uint8_t *)"ok <f=w>12</f>", 14) == GM_STATUS_OK, "tag call");
    CHECK(gm_matcher_can_terminate(tm), "tag call cannot end");
    CHECK(gm_matcher_accept_bytes(tm, (const uint8_t *)"<f=x", 4) == GM_STATUS_REJECTED, "unknown tag accepted");
    gm_matcher_free(tm);
    gm_grammar_free(tg);
    const char *bad_gbnf = "root ::= item\n";
    CHECK(!gm_compile_gbnf(vocab, bad_gbnf, strlen(bad_gbnf), NULL, err, sizeof err), "undefined rule compiled");
    printf("check: bad gbnf -> %s\n", err);

    size_t schema_len = 0;
    char *schema = read_file(argv[1], &schema_len);
    CHECK(schema, "cannot read %s", argv[1]);
    GmCompileOptions opts = gm_compile_options_default();
    GmGrammar *grammar = gm_compile_json_schema(vocab, schema, schema_len, &opts, err, sizeof err);
    free(schema);
    CHECK(grammar, "compile: %s", err);
    gm_vocab_free(vocab); /* the grammar keeps what it needs */
    printf("fingerprint: %s\n", gm_grammar_fingerprint(grammar));

    GmMatcher *m = gm_matcher_new(grammar);
    uint32_t *mask = calloc(words, sizeof *mask);
    CHECK(gm_matcher_fill_next_token_bitmask(m, mask, words - 1) == GM_STATUS_BAD_LENGTH, "short mask accepted");
    printf("check: short mask -> %s\n", gm_matcher_last_error(m));
    CHECK(gm_matcher_accept_token(m, 0xFFFFFFFFu) == GM_STATUS_TOKEN_OUT_OF_RANGE, "bad token accepted");
    printf("check: bad token -> %s\n", gm_matcher_last_error(m));
    CHECK(gm_matcher_rollback(m, 1) == GM_STATUS_ROLLBACK_TOO_FAR, "rollback past the start");

    /* Jump-forward: the wrapper is forced before any sampling. */
    uint8_t forced[256];
    size_t forced_len = 0;
    CHECK(gm_matcher_forced_bytes(m, forced, sizeof forced, &forced_len) == GM_STATUS_OK, "forced bytes");
    printf("forced: %.*s\n", (int)forced_len, (const char *)forced);

    /* The decode loop. */
    uint32_t *allowed = malloc(words * 32 * sizeof *allowed);
    int steps = 0;
    while (!gm_matcher_is_terminated(m)) {
        CHECK(steps++ < 20000, "no end after 20000 tokens");
        GmStatus st = gm_matcher_fill_next_token_bitmask(m, mask, words);
        CHECK(st == GM_STATUS_OK, "mask: %s", gm_matcher_last_error(m));
        size_t n = 0;
        for (size_t w = 0; w < words; w++)
            for (uint32_t b = mask[w]; b; b &= b - 1) allowed[n++] = (uint32_t)(w * 32 + __builtin_ctz(b));
        CHECK(n > 0, "empty mask at step %d", steps);
        uint32_t tok = allowed[next_random() % n];
        /* Try the token on a fork first, as a speculative decoder would. */
        GmMatcher *fork = gm_matcher_clone(m);
        CHECK(gm_matcher_accept_token(fork, tok) == GM_STATUS_OK, "fork rejected %u", tok);
        gm_matcher_free(fork);
        CHECK(gm_matcher_accept_token(m, tok) == GM_STATUS_OK, "masked token %u rejected: %s", tok,
              gm_matcher_last_error(m));
        /* Roll one step back and forth: the state must be the same. */
        CHECK(gm_matcher_rollback(m, 1) == GM_STATUS_OK, "rollback");
        CHECK(gm_matcher_accept_token(m, tok) == GM_STATUS_OK, "re-accept after rollback");
    }
    size_t out_len = 0;
    const uint8_t *out = gm_matcher_output(m, &out_len);
    printf("steps: %d\n", steps);
    printf("output: %.*s\n", (int)out_len, (const char *)out);
    CHECK(gm_matcher_can_terminate(m), "terminated but not complete");
    gm_matcher_free(m);
    gm_grammar_free(grammar);
    free(mask);
    free(allowed);
    printf("ok\n");
    return 0;
}
