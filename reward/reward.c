/* The reward set: configured rewards, parallel scoring of a batch, weighted combination. */
#include "reward/reward_internal.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <utf8proc.h>

typedef struct {
    AhaRewardType type;
    char *name;
    double weight;
    AhaRewardExtract extract;
    int target_len;
    double penalty;
    int max_len;
    int cache_len;
    FormatReward *format;
    CodeReward *code;
    PluginReward *plugin_so;
    ExecReward *plugin_exec;
} RewardEntry;

struct AhaRewardSet {
    RewardEntry *entries; /* [count] */
    int count;
    int jobs;
    FILE *log;
    pthread_mutex_t log_lock;
};

static const char *const type_names[] = {"math", "format", "code", "length", "overlong", "plugin", "countdown"};

const char *aha_reward_type_name(AhaRewardType type) {
    if ((int)type < 0 || (size_t)type >= sizeof type_names / sizeof type_names[0]) return "?";
    return type_names[type];
}

int aha_reward_type_parse(const char *text, AhaRewardType *type) {
    for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++) {
        if (text && strcmp(text, type_names[i]) == 0) {
            *type = (AhaRewardType)i;
            return 0;
        }
    }
    return aha_errorf("unknown reward type '%s' (expected math, format, code, length, overlong, "
                      "plugin or countdown)", text ? text : "");
}

int aha_reward_extract_parse(const char *text, AhaRewardExtract *extract) {
    if (text && strcmp(text, "auto") == 0) *extract = AHA_REWARD_EXTRACT_AUTO;
    else if (text && strcmp(text, "boxed") == 0) *extract = AHA_REWARD_EXTRACT_BOXED;
    else if (text && strcmp(text, "answer_tag") == 0) *extract = AHA_REWARD_EXTRACT_ANSWER_TAG;
    else return aha_errorf("unknown extract mode '%s' (expected auto, boxed or answer_tag)",
                           text ? text : "");
    return 0;
}

int aha_reward_code_mode_parse(const char *text, AhaCodeMode *mode) {
    if (text && strcmp(text, "fraction") == 0) *mode = AHA_CODE_FRACTION;
    else if (text && strcmp(text, "all") == 0) *mode = AHA_CODE_ALL;
    else return aha_errorf("unknown code mode '%s' (expected fraction or all)", text ? text : "");
    return 0;
}

int aha_reward_match_parse(const char *text, int *match_search) {
    if (text && strcmp(text, "full") == 0) *match_search = 0;
    else if (text && strcmp(text, "search") == 0) *match_search = 1;
    else return aha_errorf("unknown match mode '%s' (expected full or search)", text ? text : "");
    return 0;
}

void aha_reward_config_default(AhaRewardConfig *config, AhaRewardType type) {
    memset(config, 0, sizeof *config);
    config->type = type;
    config->weight = 1.0;
    config->timeout_s = 5.0;
    config->extract = AHA_REWARD_EXTRACT_AUTO;
    config->code_mode = AHA_CODE_FRACTION;
    config->memory_mb = 256;
    config->target_len = 0;
    config->penalty = 0.0;
}

double reward_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void reward_value_set(AhaRewardValue *value, AhaRewardStatus status, double score,
                      const char *fmt, ...) {
    value->status = status;
    value->score = status == AHA_REWARD_SCORED ? score : 0.0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(value->reason, sizeof value->reason, fmt, ap);
    va_end(ap);
}

double aha_reward_overlong(int n_tokens, int max_len, int cache_len) {
    int free_len = max_len - cache_len;
    if (n_tokens <= free_len) return 0.0;
    if (n_tokens <= max_len) return (double)(free_len - n_tokens) / (double)cache_len;
    return -1.0;
}

double aha_reward_length_penalty(int n_tokens, int target_len, double penalty) {
    if (n_tokens <= target_len) return 0.0;
    return -penalty * (double)(n_tokens - target_len);
}

/* ---- building ---- */

static void entry_free(RewardEntry *e) {
    free(e->name);
    format_reward_free(e->format);
    code_reward_free(e->code);
    plugin_so_free(e->plugin_so);
    plugin_exec_free(e->plugin_exec);
}

static int entry_init(RewardEntry *e, const AhaRewardConfig *c, int jobs) {
    const char *name = c->name && c->name[0] ? c->name : aha_reward_type_name(c->type);
    e->type = c->type;
    e->name = aha_strdup(name);
    AHA_CHECK_ALLOC(e->name);
    AHA_REQUIRE(isfinite(c->weight), "weight: expected a finite number");
    e->weight = c->weight;
    e->extract = c->extract;
    switch (c->type) {
    case AHA_REWARD_MATH:
        AHA_REQUIRE(c->extract >= AHA_REWARD_EXTRACT_AUTO && c->extract <= AHA_REWARD_EXTRACT_ANSWER_TAG,
                    "extract: expected auto, boxed or answer_tag");
        return 0;
    case AHA_REWARD_FORMAT:
        e->format = format_reward_create(c);
        return e->format ? 0 : -1;
    case AHA_REWARD_CODE:
        e->code = code_reward_create(c);
        return e->code ? 0 : -1;
    case AHA_REWARD_LENGTH:
        AHA_REQUIRE(c->target_len >= 0, "target: expected a token count >= 0, got %d", c->target_len);
        AHA_REQUIRE(isfinite(c->penalty) && c->penalty >= 0,
                    "penalty: expected a number >= 0, got %g", c->penalty);
        e->target_len = c->target_len;
        e->penalty = c->penalty;
        return 0;
    case AHA_REWARD_OVERLONG:
        AHA_REQUIRE(c->cache_len > 0 && c->max_len > c->cache_len,
                    "max_len, cache_len: expected 0 < cache_len < max_len, got max_len %d, "
                    "cache_len %d", c->max_len, c->cache_len);
        e->max_len = c->max_len;
        e->cache_len = c->cache_len;
        return 0;
    case AHA_REWARD_PLUGIN: {
        int has_path = c->path && c->path[0], has_command = c->command && c->command[0];
        AHA_REQUIRE(has_path != has_command,
                    "a plugin reward needs exactly one of path (a .so) and command (a program)");
        if (has_path) e->plugin_so = plugin_so_create(c, e->name, jobs);
        else e->plugin_exec = plugin_exec_create(c, e->name, jobs);
        return e->plugin_so || e->plugin_exec ? 0 : -1;
    }
    case AHA_REWARD_COUNTDOWN: return 0;
    }
    return aha_errorf("type: unknown reward type %d", (int)c->type);
}

AhaRewardSet *aha_reward_set_create(const AhaRewardConfig *configs, int count, int jobs) {
    if (count < 1 || !configs) {
        aha_errorf("rewards: expected at least one reward");
        return NULL;
    }
    if (jobs < 1) {
        aha_errorf("jobs: expected at least 1 worker, got %d", jobs);
        return NULL;
    }
    AhaRewardSet *set = aha_calloc(1, sizeof *set);
    if (!set) return NULL;
    set->entries = aha_calloc((size_t)count, sizeof *set->entries);
    if (!set->entries) {
        free(set);
        return NULL;
    }
    set->jobs = jobs;
    set->log = stderr;
    pthread_mutex_init(&set->log_lock, NULL);
    for (int i = 0; i < count; i++) {
        set->count = i + 1;
        const char *name = configs[i].name && configs[i].name[0] ? configs[i].name
                                                                  : aha_reward_type_name(configs[i].type);
        if (entry_init(&set->entries[i], &configs[i], jobs) != 0) {
            aha_error_prefix("rewards[%d] (%s)", i, name);
            aha_reward_set_free(set);
            return NULL;
        }
        for (int j = 0; j < i; j++) {
            if (strcmp(set->entries[j].name, set->entries[i].name) == 0) {
                aha_errorf("rewards[%d]: name '%s' is already used by rewards[%d]; give each "
                           "reward a unique name", i, name, j);
                aha_reward_set_free(set);
                return NULL;
            }
        }
    }
    return set;
}

void aha_reward_set_free(AhaRewardSet *set) {
    if (!set) return;
    for (int i = 0; i < set->count; i++) entry_free(&set->entries[i]);
    free(set->entries);
    pthread_mutex_destroy(&set->log_lock);
    free(set);
}

int aha_reward_set_count(const AhaRewardSet *set) { return set->count; }
const char *aha_reward_set_name(const AhaRewardSet *set, int index) { return set->entries[index].name; }
double aha_reward_set_weight(const AhaRewardSet *set, int index) { return set->entries[index].weight; }
AhaRewardType aha_reward_set_type(const AhaRewardSet *set, int index) { return set->entries[index].type; }
void aha_reward_set_error_log(AhaRewardSet *set, FILE *log) { set->log = log; }

/* ---- scoring ---- */

static int length_score(const RewardEntry *e, const RewardCall *call, AhaRewardValue *v) {
    int n = call->sample->completion_tokens;
    if (n < 0) {
        reward_value_set(v, AHA_REWARD_NO_SCORE, 0, "completion token count unknown");
        return 0;
    }
    if (e->type == AHA_REWARD_OVERLONG) {
        double s = aha_reward_overlong(n, e->max_len, e->cache_len);
        reward_value_set(v, AHA_REWARD_SCORED, s, "%d tokens, soft limit %d, max %d", n,
                         e->max_len - e->cache_len, e->max_len);
    } else {
        double s = aha_reward_length_penalty(n, e->target_len, e->penalty);
        reward_value_set(v, AHA_REWARD_SCORED, s, "%d tokens, target %d", n, e->target_len);
    }
    return 0;
}

static void entry_score(AhaRewardSet *set, RewardEntry *e, const RewardCall *call,
                        AhaRewardValue *v) {
    int rc;
    memset(v, 0, sizeof *v);
    if (!call->sample->completion) {
        reward_value_set(v, AHA_REWARD_FAILED, 0, "the sample has no completion");
        rc = 0;
    } else {
        switch (e->type) {
        case AHA_REWARD_MATH: rc = math_reward_score(e->extract, call, v); break;
        case AHA_REWARD_FORMAT: rc = format_reward_score(e->format, call, v); break;
        case AHA_REWARD_CODE: rc = code_reward_score(e->code, call, v); break;
        case AHA_REWARD_COUNTDOWN: rc = countdown_reward_score(call, v); break;
        case AHA_REWARD_LENGTH:
        case AHA_REWARD_OVERLONG: rc = length_score(e, call, v); break;
        case AHA_REWARD_PLUGIN:
            rc = e->plugin_so ? plugin_so_score(e->plugin_so, call, v)
                              : plugin_exec_score(e->plugin_exec, call, v);
            break;
        default: rc = aha_errorf("unknown reward type %d", (int)e->type);
        }
    }
    if (rc != 0) reward_value_set(v, AHA_REWARD_FAILED, 0, "%s", aha_error_message());
    if (v->status == AHA_REWARD_FAILED && set->log) {
        pthread_mutex_lock(&set->log_lock);
        fprintf(set->log, "aha reward: %s: sample %d: %s\n", e->name, call->sample_index, v->reason);
        fflush(set->log);
        pthread_mutex_unlock(&set->log_lock);
    }
}

/* Scores every reward of one sample; a row that is not a JSON object fails them all. */
static void score_sample(AhaRewardSet *set, int first, int last, const AhaRewardSample *s,
                         int index, int worker, AhaRewardValue *values) {
    json_t *parsed = NULL;
    const json_t *row = s->row;
    char row_error[AHA_REWARD_REASON_MAX] = "";
    if (!row) {
        if (s->row_json) {
            json_error_t jerr;
            parsed = json_loads(s->row_json, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
            if (!parsed)
                snprintf(row_error, sizeof row_error, "row: bad JSON at column %d: %s",
                         jerr.column, jerr.text);
        } else {
            parsed = json_object();
        }
        row = parsed;
    }
    if (!row_error[0] && !json_is_object(row)) snprintf(row_error, sizeof row_error, "row: expected a JSON object");
    RewardCall call = {.sample = s, .row = row, .sample_index = index, .worker = worker};
    for (int k = first; k < last; k++) {
        AhaRewardValue *v = &values[k - first];
        if (row_error[0]) {
            reward_value_set(v, AHA_REWARD_FAILED, 0, "%s", row_error);
            if (set->log) {
                pthread_mutex_lock(&set->log_lock);
                fprintf(set->log, "aha reward: %s: sample %d: %s\n", set->entries[k].name, index, row_error);
                pthread_mutex_unlock(&set->log_lock);
            }
        } else {
            entry_score(set, &set->entries[k], &call, v);
        }
    }
    json_decref(parsed);
}

typedef struct {
    AhaRewardSet *set;
    const AhaRewardSample *samples;
    int n;
    AhaRewardValue *values;
    atomic_int next;
} Batch;

typedef struct {
    Batch *batch;
    int worker;
} WorkerArg;

static void *worker_main(void *p) {
    WorkerArg *w = p;
    Batch *b = w->batch;
    for (;;) {
        int i = atomic_fetch_add(&b->next, 1);
        if (i >= b->n) break;
        score_sample(b->set, 0, b->set->count, &b->samples[i], i, w->worker,
                     &b->values[(size_t)i * b->set->count]);
    }
    return NULL;
}

int aha_reward_set_score(AhaRewardSet *set, const AhaRewardSample *samples, int n,
                         AhaRewardValue *values, double *total) {
    AHA_REQUIRE(n >= 0, "reward batch: expected n >= 0, got %d", n);
    Batch batch = {.set = set, .samples = samples, .n = n, .values = values};
    atomic_init(&batch.next, 0);
    int threads = set->jobs < n ? set->jobs : n;
    if (threads < 1) threads = 1;
    /* helper threads 1..threads-1; the caller is worker 0. Without memory for them (or when a
     * thread cannot start) the remaining samples are scored by the threads that did start. */
    pthread_t *tids = threads > 1 ? malloc((size_t)threads * sizeof *tids) : NULL;
    WorkerArg *args = threads > 1 ? malloc((size_t)threads * sizeof *args) : NULL;
    int started = 0;
    if (tids && args) {
        for (int t = 1; t < threads; t++) {
            args[t] = (WorkerArg){.batch = &batch, .worker = t};
            if (pthread_create(&tids[t], NULL, worker_main, &args[t]) != 0) break;
            started = t;
        }
    }
    WorkerArg caller = {.batch = &batch, .worker = 0};
    worker_main(&caller);
    for (int t = 1; t <= started; t++) pthread_join(tids[t], NULL);
    free(tids);
    free(args);
    if (total) {
        for (int i = 0; i < n; i++) {
            double sum = 0.0;
            for (int k = 0; k < set->count; k++) {
                const AhaRewardValue *v = &values[(size_t)i * set->count + k];
                if (set->entries[k].weight == 0.0) continue;
                if (v->status != AHA_REWARD_SCORED) {
                    sum = NAN;
                    break;
                }
                sum += set->entries[k].weight * v->score;
            }
            total[i] = sum;
        }
    }
    return 0;
}

int aha_reward_set_score_one(AhaRewardSet *set, int index, const AhaRewardSample *sample,
                             AhaRewardValue *value) {
    AHA_REQUIRE(index >= 0 && index < set->count, "reward index %d out of range [0, %d)", index,
                set->count);
    score_sample(set, index, index + 1, sample, 0, 0, value);
    return 0;
}

/* A JSON string of text, with any invalid UTF-8 byte replaced by U+FFFD (jansson would
 * refuse the whole string). */
static json_t *json_text(const char *text, size_t n) {
    json_t *j = json_stringn(text, n);
    if (j) return j;
    size_t o = 0;
    char *clean = malloc(3 * n + 1);
    if (!clean) return NULL;
    for (size_t i = 0; i < n;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t len = utf8proc_iterate((const utf8proc_uint8_t *)text + i, (utf8proc_ssize_t)(n - i), &cp);
        if (len < 1) {
            memcpy(clean + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i += 1;
        } else {
            memcpy(clean + o, text + i, (size_t)len);
            o += (size_t)len;
            i += (size_t)len;
        }
    }
    clean[o] = '\0';
    j = json_stringn(clean, o);
    free(clean);
    return j;
}

char *reward_request_json(const RewardCall *call) {
    const AhaRewardSample *s = call->sample;
    json_t *req = json_object();
    int bad = !req ||
              json_object_set_new(req, "prompt", json_text(s->prompt ? s->prompt : "", reward_prompt_len(s))) ||
              json_object_set_new(req, "completion", json_text(s->completion, reward_completion_len(s))) ||
              json_object_set(req, "row", (json_t *)call->row) ||
              json_object_set_new(req, "completion_tokens",
                                  json_integer(s->completion_tokens < 0 ? -1 : s->completion_tokens));
    char *text = bad ? NULL : json_dumps(req, JSON_COMPACT);
    json_decref(req);
    if (!text) {
        aha_errorf("out of memory building a plug-in request");
        return NULL;
    }
    size_t n = strlen(text);
    char *line = realloc(text, n + 2); /* room for the newline the caller appends */
    if (!line) {
        free(text);
        aha_errorf("out of memory building a plug-in request");
        return NULL;
    }
    line[n + 1] = '\0';
    return line;
}
