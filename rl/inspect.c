/* aha inspect: the questions users ask of a run store, answered as plain-text tables. */
#include <ctype.h>
#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "aha/error.h"
#include "aha/runstore.h"

#define DEFAULT_WIDTH 60
#define DEFAULT_LIMIT 10

void aha_inspect_options_init(AhaInspectOptions *o) {
    *o = (AhaInspectOptions){.step = -1, .prompt_index = 0, .prompt_id = -1, .limit = 0, .from = 0,
                             .to = -1, .text = NULL, .reward_filter = NULL, .columns = NULL, .width = 0};
}

static int sql_fail(sqlite3 *db, const char *what) { return aha_errorf("%s: %s", what, sqlite3_errmsg(db)); }

/* One cell as text: numbers short, text flattened (newlines shown as \n) and cut to width. */
static char *cell_text(sqlite3_stmt *st, int col, int width) {
    char buf[64];
    switch (sqlite3_column_type(st, col)) {
    case SQLITE_NULL: return aha_strdup("-");
    case SQLITE_INTEGER: snprintf(buf, sizeof buf, "%lld", (long long)sqlite3_column_int64(st, col)); return aha_strdup(buf);
    case SQLITE_FLOAT: snprintf(buf, sizeof buf, "%.4g", sqlite3_column_double(st, col)); return aha_strdup(buf);
    default: break;
    }
    const char *text = (const char *)sqlite3_column_text(st, col);
    size_t n = strlen(text);
    char *out = aha_malloc(2 * n + 4);
    if (!out) return NULL;
    size_t o = 0;
    int shown = 0;
    for (size_t i = 0; i < n; i++) {
        if (width > 0 && shown >= width) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        unsigned char ch = (unsigned char)text[i];
        if (ch == '\n') { out[o++] = '\\'; out[o++] = 'n'; shown += 2; continue; }
        if (ch == '\t' || ch == '\r') { out[o++] = ' '; shown++; continue; }
        out[o++] = (char)ch;
        if ((ch & 0xC0) != 0x80) shown++; /* count UTF-8 characters, not bytes */
    }
    out[o] = '\0';
    return out;
}

static int display_width(const char *s) {
    int w = 0;
    for (; *s; s++) w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

/* Runs a prepared statement and prints its rows as an aligned table. */
static int print_table(sqlite3 *db, sqlite3_stmt *st, int width, FILE *out) {
    int ncol = sqlite3_column_count(st);
    size_t cap = 64, nrows = 0;
    char **cells = aha_calloc(cap * (size_t)ncol, sizeof *cells);
    int *widths = aha_calloc((size_t)ncol, sizeof *widths);
    unsigned char *is_text = aha_calloc((size_t)ncol, 1); /* text columns align left */
    int rc = 0;
    if (!cells || !widths || !is_text) { rc = -1; goto done; }
    for (int c = 0; c < ncol; c++) widths[c] = display_width(sqlite3_column_name(st, c));
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (nrows == cap) {
            char **grown = aha_realloc(cells, 2 * cap * (size_t)ncol * sizeof *cells);
            if (!grown) { rc = -1; goto done; }
            cells = grown;
            memset(cells + cap * ncol, 0, cap * (size_t)ncol * sizeof *cells);
            cap *= 2;
        }
        for (int c = 0; c < ncol; c++) {
            char *t = cell_text(st, c, width);
            if (!t) { rc = -1; goto done; }
            cells[nrows * ncol + c] = t;
            if (sqlite3_column_type(st, c) == SQLITE_TEXT) is_text[c] = 1;
            int w = display_width(t);
            if (w > widths[c]) widths[c] = w;
        }
        nrows++;
    }
    if (step != SQLITE_DONE) { rc = sql_fail(db, "reading the run store"); goto done; }
    for (int c = 0; c < ncol; c++)
        fprintf(out, "%s%-*s", c ? "  " : "", c + 1 < ncol ? widths[c] : 0, sqlite3_column_name(st, c));
    fputc('\n', out);
    for (size_t r = 0; r < nrows; r++) {
        for (int c = 0; c < ncol; c++) {
            const char *t = cells[r * ncol + c];
            int pad = widths[c] - display_width(t);
            if (c) fputs("  ", out);
            if (!is_text[c]) fprintf(out, "%*s%s", pad, "", t);
            else fprintf(out, "%s%*s", t, c + 1 < ncol ? pad : 0, "");
        }
        fputc('\n', out);
    }
    if (nrows == 0) fputs("(no rows)\n", out);
done:
    if (cells)
        for (size_t i = 0; i < cap * (size_t)ncol; i++) free(cells[i]);
    free(cells);
    free(widths);
    free(is_text);
    return rc;
}

static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st) {
    if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK) return sql_fail(db, "querying the run store");
    return 0;
}

static int query_int(sqlite3 *db, const char *sql, long long *v) {
    sqlite3_stmt *st;
    AHA_TRY(prepare(db, sql, &st));
    int rc = sqlite3_step(st);
    *v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW) return sql_fail(db, "querying the run store");
    return 0;
}

static int resolve_step(sqlite3 *db, int step, int *out) {
    if (step >= 0) {
        *out = step;
        return 0;
    }
    long long last;
    AHA_TRY(query_int(db, "SELECT coalesce(max(step), -1) FROM steps", &last));
    AHA_REQUIRE(last >= 0, "the run has no finished step yet");
    *out = (int)last;
    return 0;
}

static int inspect_summary(sqlite3 *db, FILE *out) {
    sqlite3_stmt *st;
    AHA_TRY(prepare(db, "SELECT started_at, host, seed, version FROM run", &st));
    if (sqlite3_step(st) == SQLITE_ROW)
        fprintf(out, "run started %s on %s, seed %lld, aha %s\n", sqlite3_column_text(st, 0),
                sqlite3_column_text(st, 1), (long long)sqlite3_column_int64(st, 2), sqlite3_column_text(st, 3));
    sqlite3_finalize(st);
    long long steps, rollouts, resumes, last;
    AHA_TRY(query_int(db, "SELECT count(*) FROM steps", &steps));
    AHA_TRY(query_int(db, "SELECT coalesce(max(step), -1) FROM steps", &last));
    AHA_TRY(query_int(db, "SELECT count(*) FROM rollouts", &rollouts));
    AHA_TRY(query_int(db, "SELECT count(*) FROM resumes", &resumes));
    fprintf(out, "%lld steps (last %lld), %lld rollouts, resumed %lld times\n\n", steps, last, rollouts, resumes);
    fputs("last steps:\n", out);
    AHA_TRY(prepare(db,
                    "SELECT * FROM (SELECT step, reward_mean, accuracy, len_mean, kl, entropy, grad_norm, t_step"
                    " FROM steps ORDER BY step DESC LIMIT 5) ORDER BY step",
                    &st));
    int rc = print_table(db, st, 0, out);
    sqlite3_finalize(st);
    AHA_TRY(rc);
    long long evals;
    AHA_TRY(query_int(db, "SELECT count(*) FROM evals", &evals));
    if (evals > 0) {
        fputs("\nevals:\n", out);
        AHA_TRY(prepare(db, "SELECT step, name, n_prompts, k, accuracy, mean_at_k FROM evals ORDER BY step DESC LIMIT 5", &st));
        rc = print_table(db, st, 0, out);
        sqlite3_finalize(st);
    }
    return rc;
}

static int inspect_steps(sqlite3 *db, const AhaInspectOptions *o, FILE *out) {
    static const char default_columns[] =
        "reward_mean,accuracy,len_mean,frac_truncated,kl,entropy,clip_low,clip_high,grad_norm,lr,rollout_tok_s";
    const char *cols = o->columns ? o->columns : default_columns;
    int n;
    const AhaStepColumn *known = aha_step_columns(&n);
    char sql[4096];
    size_t used = (size_t)snprintf(sql, sizeof sql, "SELECT step");
    const char *p = cols;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        int found = 0;
        for (int i = 0; i < n; i++)
            if (strlen(known[i].name) == len && strncmp(known[i].name, p, len) == 0) found = 1;
        if (!found) {
            char list[2048];
            size_t l = 0;
            for (int i = 0; i < n; i++) l += (size_t)snprintf(list + l, sizeof list - l, "%s%s", i ? " " : "", known[i].name);
            return aha_errorf("--columns: unknown step column '%.*s'; known: %s", (int)len, p, list);
        }
        AHA_REQUIRE(used + len + 4 < sizeof sql, "--columns: too many columns");
        used += (size_t)snprintf(sql + used, sizeof sql - used, ", %.*s", (int)len, p);
        p = end ? end + 1 : p + len;
    }
    snprintf(sql + used, sizeof sql - used, " FROM steps WHERE step >= ? AND (? < 0 OR step <= ?) ORDER BY step");
    sqlite3_stmt *st;
    AHA_TRY(prepare(db, sql, &st));
    sqlite3_bind_int(st, 1, o->from);
    sqlite3_bind_int(st, 2, o->to);
    sqlite3_bind_int(st, 3, o->to);
    int rc = print_table(db, st, 0, out);
    sqlite3_finalize(st);
    return rc;
}

/* Prints rollouts as blocks: a header line with the numbers, the reward components, then the
 * completion in full. */
static int print_rollout_blocks(sqlite3 *db, sqlite3_stmt *st, FILE *out) {
    sqlite3_stmt *comp;
    AHA_TRY(prepare(db, "SELECT name, score, reason FROM rewards WHERE rollout_id = ? ORDER BY name", &comp));
    int rc, rows = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        rows++;
        fprintf(out, "--- step %d prompt %d sample %d | reward %s | advantage %.4g | %d tokens | %s | mean logp %.4g\n",
                sqlite3_column_int(st, 1), sqlite3_column_int(st, 2), sqlite3_column_int(st, 3),
                sqlite3_column_type(st, 4) == SQLITE_NULL ? "none" : (const char *)sqlite3_column_text(st, 4),
                sqlite3_column_double(st, 5), sqlite3_column_int(st, 6), sqlite3_column_text(st, 7),
                sqlite3_column_double(st, 8));
        sqlite3_bind_int64(comp, 1, sqlite3_column_int64(st, 0));
        fputs("    rewards:", out);
        while (sqlite3_step(comp) == SQLITE_ROW)
            fprintf(out, " %s=%s (%s)", sqlite3_column_text(comp, 0),
                    sqlite3_column_type(comp, 1) == SQLITE_NULL ? "none" : (const char *)sqlite3_column_text(comp, 1),
                    sqlite3_column_type(comp, 2) == SQLITE_NULL ? "" : (const char *)sqlite3_column_text(comp, 2));
        sqlite3_reset(comp);
        fprintf(out, "\n%s\n", sqlite3_column_text(st, 9));
    }
    sqlite3_finalize(comp);
    if (rc != SQLITE_DONE) return sql_fail(db, "reading rollouts");
    if (rows == 0) fputs("(no rollouts)\n", out);
    return 0;
}

#define ROLLOUT_COLUMNS "id, step, prompt_index, sample_index, reward, advantage, n_tokens, stop_reason, mean_logprob, completion"

static int inspect_best_worst(sqlite3 *db, const AhaInspectOptions *o, int best, FILE *out) {
    int step = -1;
    AHA_TRY(resolve_step(db, o->step, &step));
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT " ROLLOUT_COLUMNS " FROM rollouts WHERE step = ? ORDER BY reward %s NULLS LAST, id LIMIT ?",
             best ? "DESC" : "ASC");
    sqlite3_stmt *st;
    AHA_TRY(prepare(db, sql, &st));
    sqlite3_bind_int(st, 1, step);
    sqlite3_bind_int(st, 2, o->limit > 0 ? o->limit : 3);
    fprintf(out, "%s completions of step %d\n", best ? "best" : "worst", step);
    int rc = print_rollout_blocks(db, st, out);
    sqlite3_finalize(st);
    return rc;
}

static int inspect_prompt(sqlite3 *db, const AhaInspectOptions *o, FILE *out) {
    int step = -1;
    AHA_TRY(resolve_step(db, o->step, &step));
    sqlite3_stmt *st;
    AHA_TRY(prepare(db,
                    "SELECT p.id, p.text, p.gold FROM rollouts r JOIN prompts p ON p.id = r.prompt_id"
                    " WHERE r.step = ? AND r.prompt_index = ? LIMIT 1",
                    &st));
    sqlite3_bind_int(st, 1, step);
    sqlite3_bind_int(st, 2, o->prompt_index);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return aha_errorf("step %d has no prompt %d", step, o->prompt_index);
    }
    fprintf(out, "step %d prompt %d (data row %lld), gold %s\n%s\n\n", step, o->prompt_index,
            (long long)sqlite3_column_int64(st, 0), sqlite3_column_type(st, 2) == SQLITE_NULL ? "-" : (const char *)sqlite3_column_text(st, 2),
            sqlite3_column_text(st, 1));
    sqlite3_finalize(st);
    AHA_TRY(prepare(db,
                    "SELECT r.sample_index AS sample, r.reward, r.advantage, r.n_tokens AS tokens, r.stop_reason AS stop,"
                    " (SELECT group_concat(name || '=' || coalesce(score, 'none'), ' ') FROM rewards WHERE rollout_id = r.id) AS components,"
                    " r.completion FROM rollouts r WHERE r.step = ? AND r.prompt_index = ? ORDER BY r.sample_index",
                    &st));
    sqlite3_bind_int(st, 1, step);
    sqlite3_bind_int(st, 2, o->prompt_index);
    int rc = print_table(db, st, o->width > 0 ? o->width : DEFAULT_WIDTH, out);
    sqlite3_finalize(st);
    return rc;
}

/* "NAME OP VALUE": NAME is reward, advantage, n_tokens or a reward component. */
static int parse_filter(const char *filter, char *name, size_t name_cap, const char **op, double *value) {
    static const char *const ops[] = {">=", "<=", "!=", "==", "=", ">", "<"};
    const char *p = filter;
    while (*p && (isalnum((unsigned char)*p) || *p == '_' || *p == '-' || *p == '.')) p++;
    size_t len = (size_t)(p - filter);
    AHA_REQUIRE(len > 0 && len < name_cap, "--reward '%s': expected NAME OP VALUE, e.g. math>=1", filter);
    memcpy(name, filter, len);
    name[len] = '\0';
    *op = NULL;
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (strncmp(p, ops[i], strlen(ops[i])) == 0) {
            *op = ops[i];
            p += strlen(ops[i]);
            break;
        }
    AHA_REQUIRE(*op, "--reward '%s': expected an operator (>= <= != = > <) after '%s'", filter, name);
    char *end;
    *value = strtod(p, &end);
    AHA_REQUIRE(end != p && *end == '\0' && isfinite(*value), "--reward '%s': expected a number after '%s'", filter, *op);
    if (strcmp(*op, "==") == 0) *op = "=";
    return 0;
}

static int inspect_grep(sqlite3 *db, const AhaInspectOptions *o, FILE *out) {
    AHA_REQUIRE(o->text || o->reward_filter, "grep needs --text STRING and/or --reward NAME OP VALUE");
    char sql[1024], name[128] = "", where[256] = "";
    const char *op = NULL;
    double value = 0;
    int component = 0;
    if (o->reward_filter) {
        AHA_TRY(parse_filter(o->reward_filter, name, sizeof name, &op, &value));
        if (strcmp(name, "reward") == 0 || strcmp(name, "advantage") == 0 || strcmp(name, "n_tokens") == 0) {
            snprintf(where, sizeof where, " AND r.%s %s ?4", name, op);
        } else {
            long long known;
            sqlite3_stmt *st;
            AHA_TRY(prepare(db, "SELECT count(*) FROM rewards WHERE name = ? LIMIT 1", &st));
            sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
            known = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
            sqlite3_finalize(st);
            AHA_REQUIRE(known > 0, "--reward: no reward component named '%s' in this run (or reward, advantage, n_tokens)", name);
            component = 1;
            /* with a step, drive the join from that step's rollouts: unary + keeps SQLite
             * off the (name, score) index, which would scan every step's matches */
            snprintf(where, sizeof where, " AND %sw.score %s ?4", o->step >= 0 ? "+" : "", op);
        }
    }
    snprintf(sql, sizeof sql,
             "SELECT r.step, r.prompt_index AS prompt, r.sample_index AS sample, r.reward, %s r.n_tokens AS tokens,"
             " r.completion FROM rollouts r %s WHERE %s AND (?2 IS NULL OR instr(r.completion, ?2) > 0)"
             " %s ORDER BY r.step, r.prompt_index, r.sample_index LIMIT ?3",
             component ? "w.score AS component," : "",
             component ? "JOIN rewards w ON w.rollout_id = r.id AND w.name = ?5" : "",
             /* a literal condition, not (?1 < 0 OR ...), so that SQLite can use the step index */
             o->step >= 0 ? "r.step = ?1" : "?1 < 0", where);
    sqlite3_stmt *st;
    AHA_TRY(prepare(db, sql, &st));
    sqlite3_bind_int(st, 1, o->step);
    if (o->text) sqlite3_bind_text(st, 2, o->text, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, o->limit > 0 ? o->limit : 20);
    if (op) sqlite3_bind_double(st, 4, value);
    if (component) sqlite3_bind_text(st, 5, name, -1, SQLITE_STATIC);
    int rc = print_table(db, st, o->width > 0 ? o->width : DEFAULT_WIDTH, out);
    sqlite3_finalize(st);
    return rc;
}

static int inspect_history(sqlite3 *db, const AhaInspectOptions *o, FILE *out) {
    AHA_REQUIRE(o->prompt_id >= 0, "history needs --prompt-id N (a row of the training data; see 'prompt')");
    sqlite3_stmt *st;
    AHA_TRY(prepare(db, "SELECT text FROM prompts WHERE id = ?", &st));
    sqlite3_bind_int64(st, 1, o->prompt_id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return aha_errorf("no rollouts of prompt id %lld in this run", (long long)o->prompt_id);
    }
    fprintf(out, "prompt %lld: %s\n\n", (long long)o->prompt_id, sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    AHA_TRY(prepare(db,
                    "SELECT step, count(*) AS samples, avg(reward) AS mean_reward, max(reward) AS max_reward,"
                    " avg(n_tokens) AS mean_tokens,"
                    " (SELECT completion FROM rollouts b WHERE b.step = r.step AND b.prompt_id = r.prompt_id"
                    "  ORDER BY b.reward DESC NULLS LAST, b.sample_index LIMIT 1) AS best_completion"
                    " FROM rollouts r WHERE prompt_id = ? GROUP BY step ORDER BY step LIMIT ?",
                    &st));
    sqlite3_bind_int64(st, 1, o->prompt_id);
    sqlite3_bind_int(st, 2, o->limit > 0 ? o->limit : 1000000);
    int rc = print_table(db, st, o->width > 0 ? o->width : DEFAULT_WIDTH, out);
    sqlite3_finalize(st);
    return rc;
}

int aha_inspect(AhaRunStore *s, const char *what, const AhaInspectOptions *o, FILE *out) {
    sqlite3 *db = aha_runstore_db(s);
    if (strcmp(what, "summary") == 0) return inspect_summary(db, out);
    if (strcmp(what, "steps") == 0) return inspect_steps(db, o, out);
    if (strcmp(what, "best") == 0) return inspect_best_worst(db, o, 1, out);
    if (strcmp(what, "worst") == 0) return inspect_best_worst(db, o, 0, out);
    if (strcmp(what, "prompt") == 0) return inspect_prompt(db, o, out);
    if (strcmp(what, "grep") == 0) return inspect_grep(db, o, out);
    if (strcmp(what, "history") == 0) return inspect_history(db, o, out);
    if (strcmp(what, "evals") == 0) {
        sqlite3_stmt *st;
        AHA_TRY(prepare(db, "SELECT step, name, n_prompts, k, accuracy, mean_at_k, seconds FROM evals ORDER BY step, name", &st));
        int rc = print_table(db, st, 0, out);
        sqlite3_finalize(st);
        return rc;
    }
    return aha_errorf("unknown question '%s' (expected summary, steps, best, worst, prompt, grep, history or evals)", what);
}
