#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aha/error.h"
#include "aha/tokenizer.h"
#include "cli.h"

static const char usage[] =
    "usage: aha tokenize --model DIR [--decode] [options] < input\n\n"
    "Reads text on stdin and prints its token ids on one line, separated by spaces.\n"
    "With --decode, reads token ids (separated by spaces, commas or newlines) and prints the\n"
    "text they decode to.\n\n"
    "options:\n"
    "  --model DIR        a Hugging Face model directory with tokenizer.json (or the file)\n"
    "  --decode           ids -> text instead of text -> ids\n"
    "  --no-special       encode: special tokens written in the text (<|im_end|>) stay text\n"
    "  --skip-special     decode: leave special tokens out\n"
    "  --tokens           encode: print one token per line: id, then its bytes as text\n\n"
    "No BOS/EOS is added. Encoding reads stdin as it is (a trailing newline is text).\n";

/* All of stdin, NUL-terminated; NULL with the error recorded. */
static char *read_stdin(size_t *len) {
    size_t cap = 4096, n = 0;
    char *data = aha_malloc(cap);
    if (!data) return NULL;
    for (;;) {
        if (n + 1 >= cap) {
            char *grown = aha_realloc(data, cap *= 2);
            if (!grown) {
                free(data);
                return NULL;
            }
            data = grown;
        }
        size_t got = fread(data + n, 1, cap - n - 1, stdin);
        n += got;
        if (got == 0) break;
    }
    if (ferror(stdin)) {
        free(data);
        aha_error_errno("reading stdin");
        return NULL;
    }
    data[n] = '\0';
    *len = n;
    return data;
}

static int parse_ids(const char *text, AhaTokenIds *ids) {
    const char *p = text;
    for (;;) {
        while (*p == ' ' || *p == ',' || *p == '\n' || *p == '\t' || *p == '\r') p++;
        if (!*p) return 0;
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v > INT32_MAX)
            return aha_errorf("stdin: expected token ids, got '%.20s' at byte %zu", p, (size_t)(p - text));
        AHA_TRY(aha_token_ids_push(ids, (int32_t)v));
        p = end;
    }
}

int cmd_tokenize(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return 0;
    }
    static const struct option options[] = {
        {"model", required_argument, NULL, 'm'},   {"decode", no_argument, NULL, 'd'},
        {"no-special", no_argument, NULL, 'n'},     {"skip-special", no_argument, NULL, 's'},
        {"tokens", no_argument, NULL, 't'},         {NULL, 0, NULL, 0},
    };
    const char *model = NULL;
    int decode = 0, parse_special = 1, skip_special = 0, per_token = 0, opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'm': model = optarg; break;
        case 'd': decode = 1; break;
        case 'n': parse_special = 0; break;
        case 's': skip_special = 1; break;
        case 't': per_token = 1; break;
        default: return cli_usage_error("tokenize", "unknown option or missing value in '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error("tokenize", "unexpected argument '%s'", argv[optind]);
    if (!model) return cli_usage_error("tokenize", "--model DIR is required");

    AhaTokenizer *tok = aha_tokenizer_load(model);
    if (!tok) return cli_fail("tokenize");
    size_t len = 0;
    char *input = read_stdin(&len);
    AhaTokenIds ids = {0};
    int rc = input ? 0 : -1;
    if (rc == 0 && decode) {
        rc = parse_ids(input, &ids);
        char *text = rc == 0 ? aha_tokenizer_decode(tok, ids.ids, ids.count, skip_special, &len) : NULL;
        if (text) {
            fwrite(text, 1, len, stdout);
            fputc('\n', stdout);
            free(text);
        } else {
            rc = -1;
        }
    } else if (rc == 0) {
        rc = aha_tokenizer_encode(tok, input, len, parse_special ? AHA_TOKENIZE_PARSE_SPECIAL : 0, &ids);
        for (size_t i = 0; rc == 0 && i < ids.count; i++) {
            if (per_token) {
                size_t n;
                const char *bytes = aha_tokenizer_token_bytes(tok, ids.ids[i], &n);
                printf("%d\t", ids.ids[i]);
                for (size_t k = 0; k < n; k++) {
                    unsigned char c = (unsigned char)bytes[k];
                    if (c == '\n') fputs("\\n", stdout);
                    else if (c == '\t') fputs("\\t", stdout);
                    else if (c < 0x20 || c == 0x7F) printf("\\x%02x", c);
                    else fputc(c, stdout);
                }
                fputc('\n', stdout);
            } else {
                printf(i ? " %d" : "%d", ids.ids[i]);
            }
        }
        if (rc == 0 && !per_token) fputc('\n', stdout);
    }
    aha_token_ids_free(&ids);
    free(input);
    aha_tokenizer_free(tok);
    return rc == 0 ? 0 : cli_fail("tokenize");
}
