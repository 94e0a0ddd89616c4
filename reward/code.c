/* The code reward: the completion's last fenced Python block, run in the sandbox against the
 * row's tests. Score: the fraction of cases passed, or 1/0 for all-or-nothing. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "reward/reward_internal.h"

struct CodeReward {
    AhaCodeMode mode;
    char *python;
    AhaSandboxLimits limits;
};

/* The harness for assert tests: runs the program as __main__, then each assert, printing one
 * result line per assert tagged with a per-run nonce that is in no file, argument or
 * environment the program can read (only in the harness's frame; docs/rewards.md). */
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
    "    asserts = json.load(open('asserts.json', encoding='utf-8'))\n"
    "    out = sys.stdout\n"
    "    g = {'__name__': '__main__', '__builtins__': __builtins__}\n"
    "    try:\n"
    "        exec(compile(open('program.py', encoding='utf-8').read(), 'program.py', 'exec'), g)\n"
    "    except BaseException as e:\n"
    "        print('program failed: %r' % (e,), file=sys.stderr)\n"
    "        sys.exit(1)\n"
    "    for i, a in enumerate(asserts):\n"
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
    return cr;
}

void code_reward_free(CodeReward *cr) {
    if (!cr) return;
    free(cr->python);
    free(cr);
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

static int is_python_info(const char *info, size_t n) {
    return n == 0 || (n == 6 && memcmp(info, "python", 6) == 0) ||
           (n == 7 && memcmp(info, "python3", 7) == 0) || (n == 2 && memcmp(info, "py", 2) == 0) ||
           (n == 6 && memcmp(info, "Python", 6) == 0);
}

char *aha_code_extract(const char *completion, int *found) {
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
    size_t len = strlen(completion), pos = 0;
    size_t best_start = 0, best_end = 0;
    int have = 0, open = 0, open_python = 0;
    size_t body_start = 0;
    while (pos <= len && pcre2_match(fence_re, (PCRE2_SPTR)completion, len, pos, 0, md, NULL) >= 0) {
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        if (!open) {
            open = 1;
            open_python = is_python_info(completion + ov[2], ov[3] - ov[2]);
            body_start = ov[1] < len && completion[ov[1]] == '\n' ? ov[1] + 1 : ov[1];
        } else if (ov[3] == ov[2]) { /* only a bare ``` closes a block */
            open = 0;
            if (open_python) {
                have = 1;
                best_start = body_start;
                best_end = ov[0];
            }
        }
        pos = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
    }
    pcre2_match_data_free(md);
    if (open && open_python) { /* cut off before its closing fence: take it to the end */
        have = 1;
        best_start = body_start;
        best_end = len;
    }
    if (!have) return NULL;
    if (best_end < best_start) best_end = best_start;
    char *code = aha_malloc(best_end - best_start + 1);
    if (!code) return NULL;
    memcpy(code, completion + best_start, best_end - best_start);
    code[best_end - best_start] = '\0';
    *found = 1;
    return code;
}

/* ---- comparison ---- */

/* Output with trailing whitespace of every line and trailing empty lines removed. */
static char *normalize_output(const char *s, size_t n) {
    char *out = malloc(n + 1);
    if (!out) return NULL;
    size_t o = 0, line_start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '\n') {
            size_t end = i;
            while (end > line_start && (s[end - 1] == ' ' || s[end - 1] == '\t' ||
                                        s[end - 1] == '\r' || s[end - 1] == '\f' || s[end - 1] == '\v'))
                end--;
            memcpy(out + o, s + line_start, end - line_start);
            o += end - line_start;
            if (i < n) out[o++] = '\n';
            line_start = i + 1;
        }
    }
    while (o > 0 && out[o - 1] == '\n') o--;
    out[o] = '\0';
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

/* Runs the program once per case; *passed counts the cases whose output matched. */
static int run_stdin_stdout(CodeReward *cr, const char *code, const json_t *cases, int *passed,
                            char *note, size_t note_cap) {
    size_t n = json_array_size(cases);
    for (size_t i = 0; i < n; i++) {
        const json_t *c = json_array_get(cases, i);
        const char *input = json_string_value(json_object_get(c, "input"));
        const char *expect = json_string_value(json_object_get(c, "output"));
        AHA_REQUIRE(input && expect, "tests.cases[%zu]: expected {\"input\": string, \"output\": string}", i);
        AhaSandbox *box = aha_sandbox_create();
        if (!box) return -1;
        AhaSandboxResult r;
        const char *argv[] = {cr->python, "-I", "-B", "program.py", NULL};
        int rc = aha_sandbox_write(box, "program.py", code, strlen(code));
        if (rc == 0) rc = aha_sandbox_write(box, "input.txt", input, strlen(input));
        if (rc == 0) rc = aha_sandbox_run(box, argv, "input.txt", &cr->limits, &r);
        aha_sandbox_free(box);
        if (rc != 0) return -1;
        int ok = 0;
        if (r.outcome == AHA_SANDBOX_EXITED && r.exit_code == 0) {
            char *got = normalize_output(r.out, r.out_len);
            char *want = normalize_output(expect, strlen(expect));
            ok = got && want && strcmp(got, want) == 0;
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

static int run_asserts(CodeReward *cr, const char *code, const json_t *asserts, int *passed,
                       char *note, size_t note_cap) {
    size_t n = json_array_size(asserts);
    for (size_t i = 0; i < n; i++)
        AHA_REQUIRE(json_is_string(json_array_get(asserts, i)), "tests.asserts[%zu]: expected a string", i);
    char *asserts_text = json_dumps(asserts, JSON_COMPACT);
    AHA_CHECK_ALLOC(asserts_text);
    char nonce[64];
    snprintf(nonce, sizeof nonce, "%lx%x%lx", (unsigned long)getpid(),
             atomic_fetch_add(&nonce_counter, 1u), (unsigned long)(reward_now() * 1e9));
    AhaSandbox *box = aha_sandbox_create();
    if (!box) {
        free(asserts_text);
        return -1;
    }
    AhaSandboxResult r;
    const char *argv[] = {cr->python, "-I", "-B", "harness.py", NULL};
    int rc = aha_sandbox_write(box, "program.py", code, strlen(code));
    if (rc == 0) rc = aha_sandbox_write(box, "asserts.json", asserts_text, strlen(asserts_text));
    if (rc == 0) rc = aha_sandbox_write(box, "harness.py", assert_harness, strlen(assert_harness));
    if (rc == 0) rc = aha_sandbox_write(box, "nonce.txt", nonce, strlen(nonce));
    if (rc == 0) rc = aha_sandbox_run(box, argv, "nonce.txt", &cr->limits, &r);
    aha_sandbox_free(box);
    free(asserts_text);
    if (rc != 0) return -1;
    /* Each result line: "@@aha NONCE i P|F"; only the first result for each index counts. */
    unsigned char *seen = calloc(n ? n : 1, 1);
    if (!seen) {
        aha_sandbox_result_free(&r);
        return aha_errorf("code: out of memory");
    }
    char tag[96];
    int tag_len = snprintf(tag, sizeof tag, "@@aha %s ", nonce);
    for (const char *p = r.out; (p = strstr(p, tag)) != NULL; p += tag_len) {
        char *end;
        unsigned long i = strtoul(p + tag_len, &end, 10);
        if (end == p + tag_len || *end != ' ' || i >= n || seen[i]) continue;
        seen[i] = 1;
        if (end[1] == 'P') *passed += 1;
        else if (!note[0]) snprintf(note, note_cap, "assert %lu failed", i);
    }
    size_t reported = 0;
    for (size_t i = 0; i < n; i++) reported += seen[i];
    if (reported < n && !note[0]) {
        char buf[48];
        snprintf(note, note_cap, "%s after %zu of %zu asserts",
                 r.outcome == AHA_SANDBOX_EXITED && r.exit_code == 0 ? "stopped"
                                                                     : outcome_text(&r, buf, sizeof buf),
                 reported, n);
    }
    free(seen);
    aha_sandbox_result_free(&r);
    return 0;
}

int code_reward_score(CodeReward *cr, const RewardCall *call, AhaRewardValue *value) {
    const json_t *tests = json_object_get(call->row, "tests");
    json_t *parsed = NULL;
    if (!tests) {
        reward_value_set(value, AHA_REWARD_NO_SCORE, 0, "the row has no \"tests\"");
        return 0;
    }
    if (json_is_string(tests)) { /* data sets often keep the tests as a JSON string */
        parsed = json_loads(json_string_value(tests), 0, NULL);
        tests = parsed;
    }
    const char *format = json_string_value(json_object_get(tests, "format"));
    const json_t *cases = NULL;
    int is_assert = 0;
    if (format && strcmp(format, "stdin_stdout") == 0) {
        cases = json_object_get(tests, "cases");
    } else if (format && strcmp(format, "assert") == 0) {
        cases = json_object_get(tests, "asserts");
        is_assert = 1;
    }
    if (!json_is_array(cases) || json_array_size(cases) == 0) {
        json_decref(parsed);
        reward_value_set(value, AHA_REWARD_NO_SCORE, 0,
                         "tests: expected {\"format\": \"stdin_stdout\", \"cases\": [...]} or "
                         "{\"format\": \"assert\", \"asserts\": [...]} with at least one test");
        return 0;
    }
    int found;
    char *code = aha_code_extract(call->sample->completion, &found);
    if (!code) {
        json_decref(parsed);
        if (found) return -1;
        reward_value_set(value, AHA_REWARD_SCORED, 0.0, "no fenced Python code block");
        return 0;
    }
    int passed = 0, total = (int)json_array_size(cases);
    char note[128] = "";
    int rc = is_assert ? run_asserts(cr, code, cases, &passed, note, sizeof note)
                       : run_stdin_stdout(cr, code, cases, &passed, note, sizeof note);
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
