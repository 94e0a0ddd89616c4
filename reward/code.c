/* The code reward: the completion's program (its last fenced block in the row's language),
 * run in the sandbox against the row's tests. Python runs under the interpreter; C and C++
 * are compiled in the sandbox first. Score: the fraction of cases passed, or 1/0 for
 * all-or-nothing. Test formats: stdin/stdout cases, asserts, HumanEval rows (prompt, test
 * with check(candidate), entry_point) and MBPP rows (test_list), the last two as the data
 * sets ship them. Every text is carried with its length: a NUL is a character like any
 * other (docs/rewards.md). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pcre2.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "reward/reward_internal.h"

#define CODE_COMPILE_TIMEOUT_S 30.0
#define CODE_COMPILE_MEMORY_MB 1024
#define CODE_CC "/usr/bin/gcc"
#define CODE_CXX "/usr/bin/g++"

struct CodeReward {
    AhaCodeMode mode;
    char *python;
    AhaSandboxLimits limits;         /* one run of the program */
    AhaSandboxLimits compile_limits; /* one run of the compiler */
};

/* The harness for assert-style tests (assert, HumanEval, MBPP): runs the program as
 * __main__, then the setup code, then each test, printing one result line per test tagged
 * with a per-run nonce that is in no file, argument or environment the program can read
 * (only in the harness's frame; docs/rewards.md). */
static const char assert_harness[] =
    "import json, os, sys\n"
    "def main():\n"
    "    # the nonce arrives on stdin, whose file is then removed and replaced by /dev/null\n"
    "    nonce = sys.stdin.readline().strip()\n"
    "    os.remove('nonce.txt')\n"
    "    null = os.open(os.devnull, os.O_RDONLY)\n"
    "    os.dup2(null, 0)\n"
    "    os.close(null)\n"
    "    sys.stdin = open(os.devnull)\n"
    "    spec = json.load(open('tests.json', encoding='utf-8'))\n"
    "    out = sys.stdout\n"
    "    g = {'__name__': '__main__', '__builtins__': __builtins__}\n"
    "    try:\n"
    "        exec(compile(open('program.py', encoding='utf-8').read(), 'program.py', 'exec'), g)\n"
    "    except BaseException as e:\n"
    "        print('program failed: %r' % (e,), file=sys.stderr)\n"
    "        sys.exit(1)\n"
    "    if spec['setup']:\n"
    "        try:\n"
    "            exec(compile(spec['setup'], 'setup', 'exec'), g)\n"
    "        except BaseException as e:\n"
    "            print('test setup failed: %r' % (e,), file=sys.stderr)\n"
    "            sys.exit(1)\n"
    "    for i, a in enumerate(spec['asserts']):\n"
    "        try:\n"
    "            exec(compile(a, 'assert-%d' % i, 'exec'), g)\n"
    "            r = 'P'\n"
    "        except BaseException as e:\n"
    "            r = 'F'\n"
    "            print('assert %d failed: %r' % (i, e), file=sys.stderr)\n"
    "        out.write('\\n@@aha %s %d %s\\n' % (nonce, i, r))\n"
    "        out.flush()\n"
    "main()\n";

CodeReward *code_reward_create(const AhaRewardConfig *config) {
    const char *python = config->python && config->python[0] ? config->python : "/usr/bin/python3";
    if (python[0] != '/') {
        aha_errorf("python: expected an absolute path to the interpreter, got '%s'", python);
        return NULL;
    }
    if (access(python, X_OK) != 0) {
        aha_error_errno("python: cannot execute '%s'", python);
        return NULL;
    }
    if (!(config->timeout_s > 0 && config->timeout_s <= 3600)) {
        aha_errorf("timeout_s: expected seconds in (0, 3600], got %g", config->timeout_s);
        return NULL;
    }
    if (config->memory_mb < 32 || config->memory_mb > 65536) {
        aha_errorf("memory_mb: expected 32..65536, got %d", config->memory_mb);
        return NULL;
    }
    double compile_s = config->compile_timeout_s > 0 ? config->compile_timeout_s : CODE_COMPILE_TIMEOUT_S;
    int compile_mb = config->compile_memory_mb > 0 ? config->compile_memory_mb : CODE_COMPILE_MEMORY_MB;
    if (!(compile_s <= 3600) || compile_mb < 64 || compile_mb > 65536) {
        aha_errorf("compile limits: expected compile_timeout_s in (0, 3600] and compile_memory_mb in "
                   "64..65536, got %g and %d", compile_s, compile_mb);
        return NULL;
    }
    CodeReward *cr = aha_calloc(1, sizeof *cr);
    if (!cr) return NULL;
    cr->python = aha_strdup(python);
    if (!cr->python) {
        free(cr);
        return NULL;
    }
    cr->mode = config->code_mode;
    aha_sandbox_limits_default(&cr->limits);
    cr->limits.wall_s = config->timeout_s;
    cr->limits.cpu_s = config->timeout_s;
    cr->limits.memory_mb = config->memory_mb;
    aha_sandbox_limits_default(&cr->compile_limits);
    cr->compile_limits.wall_s = compile_s;
    cr->compile_limits.cpu_s = compile_s;
    cr->compile_limits.memory_mb = compile_mb;
    return cr;
}

void code_reward_free(CodeReward *cr) {
    if (!cr) return;
    free(cr->python);
    free(cr);
}

/* ---- languages ---- */

static const char *const language_names[] = {"any", "python", "c", "cpp"};

const char *aha_code_language_name(AhaCodeLanguage language) {
    return (unsigned)language < 4 ? language_names[language] : "?";
}

/* A fence's info string (its first word) or a row's "language": which language it names;
 * -1 for one we do not run. */
static int language_of(const char *s, size_t n) {
    static const struct {
        const char *name;
        AhaCodeLanguage language;
    } names[] = {{"python", AHA_CODE_PYTHON}, {"python3", AHA_CODE_PYTHON}, {"py", AHA_CODE_PYTHON},
                 {"py3", AHA_CODE_PYTHON},    {"c", AHA_CODE_C},            {"cpp", AHA_CODE_CPP},
                 {"c++", AHA_CODE_CPP},       {"cxx", AHA_CODE_CPP},        {"cc", AHA_CODE_CPP}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i].name) == n && strncasecmp(names[i].name, s, n) == 0) return (int)names[i].language;
    return -1;
}

int aha_code_language_parse(const char *text, AhaCodeLanguage *language) {
    int l = text ? language_of(text, strlen(text)) : -1;
    if (l < 0)
        return aha_errorf("language: expected python, c or cpp, got '%s'", text ? text : "");
    *language = (AhaCodeLanguage)l;
    return 0;
}

/* ---- extraction ---- */

static pcre2_code *fence_re;
static pthread_once_t fence_once = PTHREAD_ONCE_INIT;

static void fence_compile(void) {
    int err;
    PCRE2_SIZE off;
    /* A fence line: ``` then an optional info string, alone on its line. */
    fence_re = pcre2_compile((PCRE2_SPTR) "^[ \\t]{0,3}```[ \\t]*([^`\\r\\n]*?)[ \\t]*\\r?$",
                             PCRE2_ZERO_TERMINATED, PCRE2_MULTILINE | PCRE2_UTF | PCRE2_MATCH_INVALID_UTF,
                             &err, &off, NULL);
}

/* The language a block's info string names: its first word; 0 for an untagged block. */
static int info_language(const char *info, size_t n) {
    if (n == 0) return 0;
    size_t w = 0;
    while (w < n && info[w] != ' ' && info[w] != '\t' && info[w] != '{') w++;
    int l = language_of(info, w);
    return l < 0 ? -1 : l;
}

char *aha_code_extract_program(const char *completion, size_t len, AhaCodeLanguage want,
                               AhaCodeLanguage *got, size_t *code_len, int *found) {
    *found = 0;
    pthread_once(&fence_once, fence_compile);
    if (!fence_re) {
        aha_errorf("code: compiling the fence pattern failed");
        return NULL;
    }
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(fence_re, NULL);
    if (!md) {
        aha_errorf("code: out of memory");
        return NULL;
    }
    /* The last block of each kind: [0] untagged, [1..3] tagged with that language. */
    size_t start[4] = {0}, end[4] = {0};
    int have[4] = {0}, open = 0, open_language = -1;
    size_t pos = 0, body_start = 0;
    while (pos <= len && pcre2_match(fence_re, (PCRE2_SPTR)completion, len, pos, 0, md, NULL) >= 0) {
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        if (!open) {
            open = 1;
            open_language = info_language(completion + ov[2], ov[3] - ov[2]);
            body_start = ov[1] < len && completion[ov[1]] == '\n' ? ov[1] + 1 : ov[1];
        } else if (ov[3] == ov[2]) { /* only a bare ``` closes a block */
            open = 0;
            if (open_language >= 0) {
                have[open_language] = 1;
                start[open_language] = body_start;
                end[open_language] = ov[0] > body_start ? ov[0] : body_start;
            }
        }
        pos = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
    }
    pcre2_match_data_free(md);
    if (open && open_language >= 0) { /* cut off before its closing fence: take it to the end */
        have[open_language] = 1;
        start[open_language] = body_start;
        end[open_language] = len;
    }
    /* A tagged block wins over an untagged one (sample output, a transcript); with no
     * language asked for, the last block tagged with any language we run. */
    int pick = -1;
    if (want == AHA_CODE_ANY) {
        for (int l = 1; l < 4; l++)
            if (have[l] && (pick < 0 || start[l] > start[pick])) pick = l;
    } else if ((unsigned)want < 4 && have[want]) {
        pick = (int)want;
    }
    if (pick < 0 && have[0]) pick = 0;
    if (pick < 0) return NULL;
    AhaCodeLanguage language = pick > 0 ? (AhaCodeLanguage)pick : want == AHA_CODE_ANY ? AHA_CODE_PYTHON : want;
    size_t n = end[pick] - start[pick];
    char *code = aha_malloc(n + 1);
    if (!code) return NULL;
    memcpy(code, completion + start[pick], n);
    code[n] = '\0';
    if (got) *got = language;
    if (code_len) *code_len = n;
    *found = 1;
    return code;
}

char *aha_code_extract(const char *completion, int *found) {
    return aha_code_extract_program(completion, strlen(completion), AHA_CODE_PYTHON, NULL, NULL, found);
}

/* ---- comparison ---- */

static int is_trailing_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

/* Output with trailing whitespace of every line and trailing empty lines removed; a NUL or
 * any other byte that is not white space stays (the length is in *out_len). */
static char *normalize_output(const char *s, size_t n, size_t *out_len) {
    char *out = malloc(n + 1);
    if (!out) return NULL;
    size_t o = 0, line_start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '\n') {
            size_t end = i;
            while (end > line_start && is_trailing_space(s[end - 1])) end--;
            memcpy(out + o, s + line_start, end - line_start);
            o += end - line_start;
            if (i < n) out[o++] = '\n';
            line_start = i + 1;
        }
    }
    while (o > 0 && out[o - 1] == '\n') o--;
    out[o] = '\0';
    *out_len = o;
    return out;
}

static const char *outcome_text(const AhaSandboxResult *r, char *buf, size_t cap) {
    switch (r->outcome) {
    case AHA_SANDBOX_TIMEOUT: return "time limit";
    case AHA_SANDBOX_OUTPUT_LIMIT: return "output limit";
    case AHA_SANDBOX_SIGNALED: {
        const char *name = sigabbrev_np(r->exit_code);
        snprintf(buf, cap, "killed by SIG%s%s", name ? name : "?",
                 r->exit_code == SIGXCPU ? " (CPU time limit)" : "");
        return buf;
    }
    case AHA_SANDBOX_EXITED: snprintf(buf, cap, "exit status %d", r->exit_code); return buf;
    }
    return "?";
}

/* ---- the program: Python source, or a binary compiled in the sandbox ---- */

typedef struct {
    AhaCodeLanguage language;
    const char *code; /* [code_len] Python source (unused for a binary) */
    size_t code_len;
    char *binary;     /* [binary_len] the compiled C or C++ program, malloc'ed */
    size_t binary_len;
} Program;

/* The compiler's message worth showing: its first line that says "error", else its first line. */
static void compiler_message(const char *err, size_t n, char *out, size_t cap) {
    const char *pick = NULL, *pick_end = NULL;
    for (const char *line = err; line < err + n;) {
        const char *eol = memchr(line, '\n', (size_t)(err + n - line));
        if (!eol) eol = err + n;
        if (!pick && eol > line) pick = line, pick_end = eol;
        if (memmem(line, (size_t)(eol - line), "error", 5)) {
            pick = line, pick_end = eol;
            break;
        }
        line = eol + 1;
    }
    size_t k = 0;
    for (const char *p = pick; p && p < pick_end && k + 1 < cap; p++)
        out[k++] = (unsigned char)*p < 0x20 ? ' ' : *p;
    out[k] = '\0';
}

static int read_file(const char *path, char **data, size_t *len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    AHA_CHECK_SYS(fd >= 0, "code: opening %s", path);
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return aha_errorf("code: %s is not a regular file", path);
    }
    char *buf = malloc((size_t)st.st_size + 1);
    size_t done = 0;
    while (buf && done < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + done, (size_t)st.st_size - done);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        done += (size_t)r;
    }
    close(fd);
    if (!buf || done != (size_t)st.st_size) {
        free(buf);
        return aha_errorf("code: reading %s failed", path);
    }
    *data = buf;
    *len = done;
    return 0;
}

/* Compiles a C or C++ program in a sandbox of its own. 0 with program->binary set; 0 with
 * it NULL and the compiler's complaint in why when the program does not compile; -1 when
 * the machinery fails. */
static int compile_program(CodeReward *cr, Program *program, char *why, size_t why_cap) {
    int cpp = program->language == AHA_CODE_CPP;
    const char *compiler = cpp ? CODE_CXX : CODE_CC;
    AHA_REQUIRE(access(compiler, X_OK) == 0, "code: no %s compiler at %s (scripts/setup.sh installs it)",
                cpp ? "C++" : "C", compiler);
    const char *source = cpp ? "prog.cpp" : "prog.c";
    const char *argv[] = {compiler, cpp ? "-std=gnu++17" : "-std=gnu17", "-O2", "-pipe",
                          "-fdiagnostics-plain-output", "-o", "prog", source, "-lm", NULL};
    AhaSandbox *box = aha_sandbox_create();
    if (!box) return -1;
    AhaSandboxResult r;
    int rc = aha_sandbox_write(box, source, program->code, program->code_len);
    if (rc == 0) rc = aha_sandbox_run(box, argv, NULL, &cr->compile_limits, &r);
    if (rc != 0) {
        aha_sandbox_free(box);
        return -1;
    }
    if (r.outcome == AHA_SANDBOX_EXITED && r.exit_code == 0) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/prog", aha_sandbox_dir(box));
        rc = read_file(path, &program->binary, &program->binary_len);
    } else {
        char message[80], buf[48];
        compiler_message(r.err, r.err_len, message, sizeof message);
        if (r.outcome == AHA_SANDBOX_EXITED)
            snprintf(why, why_cap, "compile error: %s", message[0] ? message : "(no message)");
        else
            snprintf(why, why_cap, "compile failed: %s%s%s",
                     r.outcome == AHA_SANDBOX_TIMEOUT ? "compile time limit" : outcome_text(&r, buf, sizeof buf),
                     message[0] ? ": " : "", message);
    }
    aha_sandbox_result_free(&r);
    aha_sandbox_free(box);
    return rc;
}

/* Puts the program into a fresh box and fills argv (path keeps the binary's absolute path). */
static int program_install(const CodeReward *cr, const Program *program, AhaSandbox *box,
                           const char *script, const char **argv, char *path, size_t path_cap) {
    if (program->binary) {
        AHA_REQUIRE(snprintf(path, path_cap, "%s/prog", aha_sandbox_dir(box)) < (int)path_cap,
                    "code: sandbox path too long");
        AHA_TRY(aha_sandbox_write(box, "prog", program->binary, program->binary_len));
        AHA_CHECK_SYS(chmod(path, 0755) == 0, "code: chmod %s", path);
        argv[0] = path;
        argv[1] = NULL;
        return 0;
    }
    AHA_TRY(aha_sandbox_write(box, "program.py", program->code, program->code_len));
    argv[0] = cr->python;
    argv[1] = "-I";
    argv[2] = "-B";
    argv[3] = script;
    argv[4] = NULL;
    return 0;
}

/* Runs the program once per case; *passed counts the cases whose output matched. */
static int run_stdin_stdout(CodeReward *cr, const Program *program, const json_t *cases, int *passed,
                            char *note, size_t note_cap) {
    size_t n = json_array_size(cases);
    for (size_t i = 0; i < n; i++) {
        const json_t *c = json_array_get(cases, i);
        const json_t *input = json_object_get(c, "input"), *expect = json_object_get(c, "output");
        AHA_REQUIRE(json_is_string(input) && json_is_string(expect),
                    "tests.cases[%zu]: expected {\"input\": string, \"output\": string}", i);
        AhaSandbox *box = aha_sandbox_create();
        if (!box) return -1;
        AhaSandboxResult r;
        const char *argv[6];
        char path[PATH_MAX];
        int rc = program_install(cr, program, box, "program.py", argv, path, sizeof path);
        if (rc == 0)
            rc = aha_sandbox_write(box, "input.txt", json_string_value(input), json_string_length(input));
        if (rc == 0) rc = aha_sandbox_run(box, argv, "input.txt", &cr->limits, &r);
        aha_sandbox_free(box);
        if (rc != 0) return -1;
        int ok = 0;
        if (r.outcome == AHA_SANDBOX_EXITED && r.exit_code == 0) {
            size_t got_len, want_len;
            char *got = normalize_output(r.out, r.out_len, &got_len);
            char *want = normalize_output(json_string_value(expect), json_string_length(expect), &want_len);
            ok = got && want && got_len == want_len && memcmp(got, want, got_len) == 0;
            if (!ok && !note[0]) snprintf(note, note_cap, "case %zu: wrong output", i);
            free(got);
            free(want);
        } else if (!note[0]) {
            char buf[48];
            snprintf(note, note_cap, "case %zu: %s", i, outcome_text(&r, buf, sizeof buf));
        }
        aha_sandbox_result_free(&r);
        *passed += ok;
        if (!ok && cr->mode == AHA_CODE_ALL) break;
    }
    return 0;
}

static atomic_uint nonce_counter;

/* One run of the harness over a Python program: setup (may be NULL) then each test of
 * asserts (an array of strings). */
static int run_asserts(CodeReward *cr, const Program *program, const char *setup, size_t setup_len,
                       const json_t *asserts, int *passed, char *note, size_t note_cap) {
    size_t n = json_array_size(asserts);
    for (size_t i = 0; i < n; i++)
        AHA_REQUIRE(json_is_string(json_array_get(asserts, i)), "tests.asserts[%zu]: expected a string", i);
    json_t *spec = json_object();
    AHA_CHECK_ALLOC(spec);
    char *spec_text = NULL;
    if (json_object_set_new(spec, "setup", json_stringn(setup ? setup : "", setup ? setup_len : 0)) == 0 &&
        json_object_set(spec, "asserts", (json_t *)asserts) == 0)
        spec_text = json_dumps(spec, JSON_COMPACT);
    json_decref(spec);
    AHA_REQUIRE(spec_text, "code: out of memory (or test setup that is not UTF-8)");
    char nonce[64];
    snprintf(nonce, sizeof nonce, "%lx%x%lx", (unsigned long)getpid(),
             atomic_fetch_add(&nonce_counter, 1u), (unsigned long)(reward_now() * 1e9));
    AhaSandbox *box = aha_sandbox_create();
    if (!box) {
        free(spec_text);
        return -1;
    }
    AhaSandboxResult r;
    const char *argv[6];
    char path[PATH_MAX];
    int rc = program_install(cr, program, box, "harness.py", argv, path, sizeof path);
    if (rc == 0) rc = aha_sandbox_write(box, "tests.json", spec_text, strlen(spec_text));
    if (rc == 0) rc = aha_sandbox_write(box, "harness.py", assert_harness, strlen(assert_harness));
    if (rc == 0) rc = aha_sandbox_write(box, "nonce.txt", nonce, strlen(nonce));
    if (rc == 0) rc = aha_sandbox_run(box, argv, "nonce.txt", &cr->limits, &r);
    aha_sandbox_free(box);
    free(spec_text);
    if (rc != 0) return -1;
    /* Each result line: "@@aha NONCE i P|F"; only the first result for each index counts.
     * The output is searched by length: a NUL the program printed hides nothing. */
    unsigned char *seen = calloc(n ? n : 1, 1);
    if (!seen) {
        aha_sandbox_result_free(&r);
        return aha_errorf("code: out of memory");
    }
    char tag[96];
    size_t tag_len = (size_t)snprintf(tag, sizeof tag, "@@aha %s ", nonce);
    const char *out_end = r.out + r.out_len;
    for (const char *p = r.out; (p = memmem(p, (size_t)(out_end - p), tag, tag_len)) != NULL; p += tag_len) {
        const char *q = p + tag_len;
        unsigned long i = 0;
        int digits = 0;
        while (q < out_end && *q >= '0' && *q <= '9' && digits < 18) i = i * 10 + (unsigned long)(*q++ - '0'), digits++;
        if (!digits || q + 1 >= out_end || *q != ' ' || i >= n || seen[i]) continue;
        seen[i] = 1;
        if (q[1] == 'P') *passed += 1;
        else if (!note[0]) snprintf(note, note_cap, "assert %lu failed", i);
    }
    size_t reported = 0;
    for (size_t i = 0; i < n; i++) reported += seen[i];
    if (reported < n && !note[0]) {
        char buf[48];
        if (r.outcome == AHA_SANDBOX_EXITED && r.exit_code == 1 && reported == 0 &&
            (memmem(r.err, r.err_len, "program failed: ", 16) || memmem(r.err, r.err_len, "test setup failed: ", 19))) {
            char message[112];
            const char *at = memmem(r.err, r.err_len, "program failed: ", 16);
            if (!at) at = memmem(r.err, r.err_len, "test setup failed: ", 19);
            compiler_message(at, (size_t)(r.err + r.err_len - at), message, sizeof message);
            snprintf(note, note_cap, "%s", message);
        } else {
            snprintf(note, note_cap, "%s after %zu of %zu asserts",
                     r.outcome == AHA_SANDBOX_EXITED && r.exit_code == 0 ? "stopped"
                                                                         : outcome_text(&r, buf, sizeof buf),
                     reported, n);
        }
    }
    free(seen);
    aha_sandbox_result_free(&r);
    return 0;
}

/* ---- the tests of a row ---- */

typedef enum { TESTS_STDIN_STDOUT, TESTS_ASSERT, TESTS_HUMANEVAL, TESTS_MBPP } TestsKind;

typedef struct {
    TestsKind kind;
    const json_t *cases;   /* stdin_stdout: the cases; assert/MBPP: the asserts */
    const json_t *prompt;  /* HumanEval: the function's signature and docstring (may be NULL) */
    const json_t *test;    /* HumanEval: defines check(candidate) */
    const json_t *entry;   /* HumanEval: the function's name */
    const json_t *setup;   /* MBPP: test_setup_code (may be NULL) */
    const json_t *imports; /* MBPP: test_imports, an array of lines (may be NULL) */
} Tests;

static const char usable_tests[] =
    "tests: expected \"tests\" {\"format\": \"stdin_stdout\", \"cases\": [...]} or {\"format\": "
    "\"assert\", \"asserts\": [...]}, HumanEval fields (test, entry_point) or MBPP's test_list";

/* Reads the tests from obj (a "tests" object, or the row itself for the data sets' own
 * fields): 0 found, 1 none there. */
static int tests_read(const json_t *obj, int is_row, Tests *t) {
    memset(t, 0, sizeof *t);
    const char *format = is_row ? NULL : json_string_value(json_object_get(obj, "format"));
    if (format && strcmp(format, "stdin_stdout") == 0) {
        t->kind = TESTS_STDIN_STDOUT;
        t->cases = json_object_get(obj, "cases");
    } else if (format && strcmp(format, "assert") == 0) {
        t->kind = TESTS_ASSERT;
        t->cases = json_object_get(obj, "asserts");
    } else if ((!format || strcmp(format, "humaneval") == 0) && json_is_string(json_object_get(obj, "test")) &&
               json_is_string(json_object_get(obj, "entry_point"))) {
        t->kind = TESTS_HUMANEVAL;
        t->test = json_object_get(obj, "test");
        t->entry = json_object_get(obj, "entry_point");
        t->prompt = json_object_get(obj, "prompt");
        return json_is_string(t->prompt) || !t->prompt ? 0 : 1;
    } else if ((!format || strcmp(format, "mbpp") == 0) && json_object_get(obj, "test_list")) {
        t->kind = TESTS_MBPP;
        t->cases = json_object_get(obj, "test_list");
        t->setup = json_object_get(obj, "test_setup_code");
        t->imports = json_object_get(obj, "test_imports");
        if ((t->setup && !json_is_string(t->setup)) || (t->imports && !json_is_array(t->imports))) return 1;
    } else {
        return 1;
    }
    return json_is_array(t->cases) && json_array_size(t->cases) > 0 ? 0 : 1;
}

/* A fresh string of a+b (lengths given). */
static char *concat(const char *a, size_t an, const char *b, size_t bn, size_t *len) {
    char *s = aha_malloc(an + bn + 1);
    if (!s) return NULL;
    memcpy(s, a, an);
    memcpy(s + an, b, bn);
    s[an + bn] = '\0';
    *len = an + bn;
    return s;
}

/* Whether code defines `name` at the top level ("def name(" at the start of a line). */
static int defines_function(const char *code, size_t n, const char *name) {
    size_t k = strlen(name);
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && code[i - 1] != '\n') continue;
        size_t j = i;
        if (n - j >= 6 && memcmp(code + j, "async ", 6) == 0) j += 6;
        if (n - j < 4 + k || memcmp(code + j, "def ", 4) != 0) continue;
        j += 4;
        while (j < n && code[j] == ' ') j++;
        if (n - j < k || memcmp(code + j, name, k) != 0) continue;
        j += k;
        while (j < n && code[j] == ' ') j++;
        if (j < n && code[j] == '(') return 1;
    }
    return 0;
}

/* The HumanEval program: the prompt (signature and docstring, a complete function by
 * itself) followed by the completion. A completion that defines the entry point is the whole
 * function and comes after the prompt, replacing its function; otherwise it is the body,
 * indented by four spaces when written at the margin. */
static char *humaneval_program(const Tests *t, const char *code, size_t code_len, size_t *len) {
    const char *prompt = t->prompt ? json_string_value(t->prompt) : "";
    size_t prompt_len = t->prompt ? json_string_length(t->prompt) : 0;
    if (defines_function(code, code_len, json_string_value(t->entry))) {
        size_t head_len;
        char *head = concat(prompt, prompt_len, "\n\n", 2, &head_len);
        if (!head) return NULL;
        char *s = concat(head, head_len, code, code_len, len);
        free(head);
        return s;
    }
    size_t first = 0;
    while (first < code_len && (code[first] == '\n' || code[first] == '\r')) first++;
    int at_margin = first < code_len && code[first] != ' ' && code[first] != '\t';
    size_t lines = 1;
    for (size_t i = 0; i < code_len; i++) lines += code[i] == '\n';
    char *s = aha_malloc(prompt_len + 1 + code_len + (at_margin ? 4 * lines : 0) + 2);
    if (!s) return NULL;
    size_t o = 0;
    memcpy(s, prompt, prompt_len);
    o = prompt_len;
    if (o > 0 && s[o - 1] != '\n') s[o++] = '\n';
    for (size_t i = 0; i < code_len; i++) {
        if (at_margin && (i == 0 || code[i - 1] == '\n') && code[i] != '\n' && code[i] != '\r') {
            memcpy(s + o, "    ", 4);
            o += 4;
        }
        s[o++] = code[i];
    }
    s[o++] = '\n';
    s[o] = '\0';
    *len = o;
    return s;
}

/* HumanEval as one harness test: the row's test defines check(candidate), called with the
 * entry point. MBPP: the imports and setup code before the asserts of test_list. */
static int run_dataset_tests(CodeReward *cr, const Tests *t, const Program *program, int *passed, int *total,
                             char *note, size_t note_cap) {
    if (t->kind == TESTS_HUMANEVAL) {
        const char *entry = json_string_value(t->entry);
        size_t test_len = json_string_length(t->test), entry_len = strlen(entry);
        char *call = aha_malloc(test_len + entry_len + 16);
        AHA_CHECK_ALLOC(call);
        memcpy(call, json_string_value(t->test), test_len);
        size_t o = test_len;
        o += (size_t)sprintf(call + o, "\ncheck(%s)\n", entry);
        json_t *asserts = json_array();
        int bad = !asserts || json_array_append_new(asserts, json_stringn(call, o)) != 0;
        free(call);
        if (bad) {
            json_decref(asserts);
            return aha_errorf("code: out of memory (or a HumanEval test that is not UTF-8)");
        }
        *total = 1;
        int rc = run_asserts(cr, program, NULL, 0, asserts, passed, note, note_cap);
        json_decref(asserts);
        return rc;
    }
    /* MBPP */
    size_t setup_len = 0;
    char *setup = aha_strdup("");
    AHA_CHECK_ALLOC(setup);
    for (size_t i = 0; t->imports && i < json_array_size(t->imports); i++) {
        const json_t *line = json_array_get(t->imports, i);
        if (!json_is_string(line)) {
            free(setup);
            return aha_errorf("tests.test_imports[%zu]: expected a string", i);
        }
        size_t a_len;
        char *a = concat(setup, setup_len, json_string_value(line), json_string_length(line), &a_len);
        free(setup);
        setup = a ? concat(a, a_len, "\n", 1, &setup_len) : NULL;
        free(a);
        AHA_CHECK_ALLOC(setup);
    }
    if (t->setup) {
        char *s = concat(setup, setup_len, json_string_value(t->setup), json_string_length(t->setup), &setup_len);
        free(setup);
        setup = s;
        AHA_CHECK_ALLOC(setup);
    }
    *total = (int)json_array_size(t->cases);
    int rc = run_asserts(cr, program, setup, setup_len, t->cases, passed, note, note_cap);
    free(setup);
    return rc;
}

int code_reward_score(CodeReward *cr, const RewardCall *call, AhaRewardValue *value) {
    const json_t *tests_field = json_object_get(call->row, "tests");
    json_t *parsed = NULL;
    Tests t;
    int none;
    if (tests_field) {
        if (json_is_string(tests_field)) { /* data sets often keep the tests as a JSON string */
            parsed = json_loadb(json_string_value(tests_field), json_string_length(tests_field),
                                JSON_ALLOW_NUL, NULL);
            tests_field = parsed;
        }
        none = !json_is_object(tests_field) || tests_read(tests_field, 0, &t) != 0;
    } else {
        none = tests_read(call->row, 1, &t) != 0;
    }
    if (none) {
        json_decref(parsed);
        reward_value_set(value, AHA_REWARD_NO_SCORE, 0, "%s",
                         tests_field || json_object_get(call->row, "test_list") || json_object_get(call->row, "test")
                             ? usable_tests
                             : "the row has no \"tests\" (nor HumanEval's test and entry_point, nor MBPP's test_list)");
        return 0;
    }
    AhaCodeLanguage want = AHA_CODE_ANY;
    const json_t *language = json_object_get(call->row, "language");
    if (language && aha_code_language_parse(json_string_value(language), &want) != 0) {
        json_decref(parsed);
        reward_value_set(value, AHA_REWARD_NO_SCORE, 0, "row: %s", aha_error_message());
        return 0;
    }
    if (t.kind != TESTS_STDIN_STDOUT) {
        if (want != AHA_CODE_ANY && want != AHA_CODE_PYTHON) {
            json_decref(parsed);
            reward_value_set(value, AHA_REWARD_NO_SCORE, 0,
                             "tests: assert, HumanEval and MBPP tests run Python, but the row's language is %s",
                             aha_code_language_name(want));
            return 0;
        }
        want = AHA_CODE_PYTHON;
    }
    int found;
    size_t code_len = 0;
    AhaCodeLanguage got = AHA_CODE_PYTHON;
    const AhaRewardSample *s = call->sample;
    size_t completion_len = reward_completion_len(s);
    char *code = aha_code_extract_program(s->completion, completion_len, want, &got, &code_len, &found);
    if (!code) {
        json_decref(parsed);
        if (found) return -1;
        reward_value_set(value, AHA_REWARD_SCORED, 0.0, "no fenced %s code block",
                         want == AHA_CODE_ANY ? "Python, C or C++" : want == AHA_CODE_PYTHON ? "Python"
                                                                 : want == AHA_CODE_C ? "C" : "C++");
        return 0;
    }
    if (t.kind == TESTS_HUMANEVAL) {
        size_t n;
        char *whole = humaneval_program(&t, code, code_len, &n);
        free(code);
        if (!whole) {
            json_decref(parsed);
            return -1;
        }
        code = whole;
        code_len = n;
    }
    Program program = {.language = got, .code = code, .code_len = code_len};
    int passed = 0, total = (int)json_array_size(t.cases);
    char note[160] = "";
    int rc = 0;
    if (got == AHA_CODE_C || got == AHA_CODE_CPP) {
        rc = compile_program(cr, &program, note, sizeof note);
        if (rc == 0 && !program.binary) {
            free(code);
            json_decref(parsed);
            reward_value_set(value, AHA_REWARD_SCORED, 0.0, "0/%d passed; %s", total, note);
            return 0;
        }
    }
    if (rc == 0) {
        if (t.kind == TESTS_STDIN_STDOUT) rc = run_stdin_stdout(cr, &program, t.cases, &passed, note, sizeof note);
        else if (t.kind == TESTS_ASSERT) rc = run_asserts(cr, &program, NULL, 0, t.cases, &passed, note, sizeof note);
        else rc = run_dataset_tests(cr, &t, &program, &passed, &total, note, sizeof note);
    }
    free(program.binary);
    free(code);
    json_decref(parsed);
    if (rc != 0) {
        /* A malformed test case is the data's fault: no score, not a failure. */
        if (strncmp(aha_error_message(), "tests.", 6) == 0) {
            reward_value_set(value, AHA_REWARD_NO_SCORE, 0, "%s", aha_error_message());
            return 0;
        }
        return -1;
    }
    double score = cr->mode == AHA_CODE_ALL ? (passed == total ? 1.0 : 0.0) : (double)passed / total;
    reward_value_set(value, AHA_REWARD_SCORED, score, "%d/%d passed%s%s", passed, total,
                     note[0] ? "; first failure: " : "", note);
    return 0;
}
