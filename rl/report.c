/* aha report: one self-contained HTML page (inline SVG, no scripts, no network) with the
 * curves people watch during GRPO and a few completions per step. */
#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "aha/error.h"
#include "aha/runstore.h"

typedef struct {
    char label[96];
    double *x, *y; /* [n] */
    int n;
} Series;

static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"};

static void series_free(Series *s, int n) {
    for (int i = 0; i < n; i++) {
        free(s[i].x);
        free(s[i].y);
    }
}

/* Loads (x, y) rows of a two-column query with an optional text parameter. */
static int load_series(sqlite3 *db, const char *sql, const char *param, const char *label, Series *s) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return aha_errorf("report: %s", sqlite3_errmsg(db));
    if (param) sqlite3_bind_text(st, 1, param, -1, SQLITE_STATIC);
    int cap = 256, rc;
    *s = (Series){0};
    snprintf(s->label, sizeof s->label, "%s", label);
    s->x = aha_malloc((size_t)cap * sizeof *s->x);
    s->y = aha_malloc((size_t)cap * sizeof *s->y);
    if (!s->x || !s->y) { sqlite3_finalize(st); return -1; }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (s->n == cap) {
            cap *= 2;
            double *nx = aha_realloc(s->x, (size_t)cap * sizeof *nx);
            if (nx) s->x = nx;
            double *ny = nx ? aha_realloc(s->y, (size_t)cap * sizeof *ny) : NULL;
            if (!ny) { sqlite3_finalize(st); return -1; }
            s->y = ny;
        }
        s->x[s->n] = sqlite3_column_double(st, 0);
        s->y[s->n] = sqlite3_column_type(st, 1) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 1);
        s->n++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return aha_errorf("report: %s", sqlite3_errmsg(db));
    return 0;
}

static int load_step_column(sqlite3 *db, const char *column, const char *label, Series *s) {
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT step, %s FROM steps ORDER BY step", column);
    return load_series(db, sql, NULL, label, s);
}

static void html_escape(FILE *out, const char *text) {
    for (const char *p = text; *p; p++) {
        switch (*p) {
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '&': fputs("&amp;", out); break;
        case '"': fputs("&quot;", out); break;
        default: fputc(*p, out);
        }
    }
}

/* A line chart of the series, broken at missing (NaN) values. */
static void svg_plot(FILE *out, const char *title, const Series *s, int ns) {
    const double W = 460, H = 250, L = 58, R = 12, T = 28, B = 34;
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    for (int k = 0; k < ns; k++)
        for (int i = 0; i < s[k].n; i++) {
            if (!isfinite(s[k].y[i])) continue;
            xmin = fmin(xmin, s[k].x[i]);
            xmax = fmax(xmax, s[k].x[i]);
            ymin = fmin(ymin, s[k].y[i]);
            ymax = fmax(ymax, s[k].y[i]);
        }
    fprintf(out, "<figure><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\">\n",
            W, H, W, H);
    fprintf(out, "<text x=\"%.0f\" y=\"18\" font-size=\"14\" font-weight=\"bold\">", L);
    html_escape(out, title);
    fputs("</text>\n", out);
    if (!isfinite(xmin)) {
        fprintf(out, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"12\" fill=\"#888\">no data</text></svg></figure>\n", L, H / 2);
        return;
    }
    if (xmax == xmin) { xmin -= 0.5; xmax += 0.5; }
    if (ymax == ymin) { double d = ymax == 0 ? 1 : fabs(ymax) * 0.1; ymin -= d; ymax += d; }
    double pw = W - L - R, ph = H - T - B;
#define PX(v) (L + ((v) - xmin) / (xmax - xmin) * pw)
#define PY(v) (T + (1.0 - ((v) - ymin) / (ymax - ymin)) * ph)
    fprintf(out, "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" stroke=\"#ccc\"/>\n", L, T, pw, ph);
    for (int g = 0; g <= 4; g++) {
        double v = ymin + (ymax - ymin) * g / 4.0;
        fprintf(out, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>", L, L + pw, PY(v), PY(v));
        fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" text-anchor=\"end\">%.3g</text>\n", L - 4, PY(v) + 3, v);
    }
    fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\">%.0f</text>", L, H - B + 14, xmin);
    fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" text-anchor=\"end\">%.0f</text>", L + pw, H - B + 14, xmax);
    fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" text-anchor=\"middle\">step</text>\n", L + pw / 2, H - B + 14);
    for (int k = 0; k < ns; k++) {
        const char *color = palette[k % (int)(sizeof palette / sizeof palette[0])];
        int open = 0;
        for (int i = 0; i < s[k].n; i++) {
            if (!isfinite(s[k].y[i])) {
                if (open) fputs("\"/>\n", out);
                open = 0;
                continue;
            }
            if (!open) fprintf(out, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", color);
            fprintf(out, "%.1f,%.1f ", PX(s[k].x[i]), PY(s[k].y[i]));
            open = 1;
        }
        if (open) fputs("\"/>\n", out);
        if (s[k].n == 1 && isfinite(s[k].y[0]))
            fprintf(out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>\n", PX(s[k].x[0]), PY(s[k].y[0]), color);
        fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" fill=\"%s\">", L - 40 + 100.0 * (k % 4), H - 4.0, color);
        html_escape(out, s[k].label);
        fputs("</text>\n", out);
    }
#undef PX
#undef PY
    fputs("</svg></figure>\n", out);
}

static int plot_columns(sqlite3 *db, FILE *out, const char *title, const char *const *columns, int n) {
    Series s[6];
    int loaded = 0, rc = 0;
    for (int i = 0; i < n && rc == 0; i++, loaded++) rc = load_step_column(db, columns[i], columns[i], &s[i]);
    if (rc == 0) svg_plot(out, title, s, n);
    series_free(s, loaded);
    return rc;
}

static int plot_rewards(sqlite3 *db, FILE *out) {
    Series s[6];
    int n = 0, rc = load_step_column(db, "reward_mean", "reward (total)", &s[n]);
    if (rc == 0) n++;
    sqlite3_stmt *st;
    if (rc == 0 && sqlite3_prepare_v2(db, "SELECT DISTINCT name FROM step_rewards ORDER BY name LIMIT 3", -1, &st, NULL) == SQLITE_OK) {
        while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
            const char *name = (const char *)sqlite3_column_text(st, 0);
            char label[96];
            snprintf(label, sizeof label, "%s", name);
            rc = load_series(db, "SELECT step, mean FROM step_rewards WHERE name = ?1 ORDER BY step", name, label, &s[n]);
            if (rc == 0) n++;
        }
        sqlite3_finalize(st);
    }
    if (rc == 0) svg_plot(out, "reward per step (mean)", s, n);
    series_free(s, n);
    if (rc != 0) return rc;
    n = 0;
    rc = load_step_column(db, "accuracy", "train accuracy", &s[n]);
    if (rc == 0) n++;
    if (rc == 0 && (rc = load_series(db, "SELECT step, accuracy FROM evals ORDER BY step", NULL, "eval greedy", &s[n])) == 0) n++;
    if (rc == 0 && (rc = load_series(db, "SELECT step, mean_at_k FROM evals ORDER BY step", NULL, "eval mean@k", &s[n])) == 0) n++;
    if (rc == 0) svg_plot(out, "accuracy", s, n);
    series_free(s, n);
    return rc;
}

static int write_samples(sqlite3 *db, FILE *out) {
    sqlite3_stmt *steps, *pick;
    if (sqlite3_prepare_v2(db, "SELECT step FROM steps ORDER BY step", -1, &steps, NULL) != SQLITE_OK)
        return aha_errorf("report: %s", sqlite3_errmsg(db));
    int cap = 64, n = 0, *all = aha_malloc((size_t)cap * sizeof *all);
    if (!all) { sqlite3_finalize(steps); return -1; }
    while (sqlite3_step(steps) == SQLITE_ROW) {
        if (n == cap) {
            int *grown = aha_realloc(all, (size_t)(cap *= 2) * sizeof *grown);
            if (!grown) { free(all); sqlite3_finalize(steps); return -1; }
            all = grown;
        }
        all[n++] = sqlite3_column_int(steps, 0);
    }
    sqlite3_finalize(steps);
    if (sqlite3_prepare_v2(db,
                           "SELECT r.prompt_index, r.sample_index, r.reward, r.n_tokens, r.stop_reason, p.text, r.completion"
                           " FROM rollouts r JOIN prompts p ON p.id = r.prompt_id WHERE r.step = ?1"
                           " ORDER BY r.reward * ?2 DESC NULLS LAST, r.id LIMIT 1",
                           -1, &pick, NULL) != SQLITE_OK) {
        free(all);
        return aha_errorf("report: %s", sqlite3_errmsg(db));
    }
    fputs("<h2>Sample completions</h2>\n", out);
    if (n == 0) fputs("<p>No finished step yet.</p>\n", out);
    int shown = n < 6 ? n : 6, last_step = -1;
    for (int k = 0; k < shown; k++) {
        int step = all[shown == 1 ? n - 1 : (int)((long)k * (n - 1) / (shown - 1))];
        if (step == last_step) continue;
        last_step = step;
        fprintf(out, "<h3>step %d</h3>\n", step);
        for (int best = 1; best >= 0; best--) {
            sqlite3_bind_int(pick, 1, step);
            sqlite3_bind_int(pick, 2, best ? 1 : -1);
            if (sqlite3_step(pick) == SQLITE_ROW) {
                fprintf(out, "<p class=\"meta\">%s: prompt %d sample %d, reward %s, %d tokens, %s</p>\n<pre class=\"prompt\">",
                        best ? "best" : "worst", sqlite3_column_int(pick, 0), sqlite3_column_int(pick, 1),
                        sqlite3_column_type(pick, 2) == SQLITE_NULL ? "none" : (const char *)sqlite3_column_text(pick, 2),
                        sqlite3_column_int(pick, 3), sqlite3_column_text(pick, 4));
                html_escape(out, (const char *)sqlite3_column_text(pick, 5));
                fputs("</pre>\n<pre>", out);
                html_escape(out, (const char *)sqlite3_column_text(pick, 6));
                fputs("</pre>\n", out);
            }
            sqlite3_reset(pick);
        }
    }
    sqlite3_finalize(pick);
    free(all);
    return 0;
}

int aha_report_html(AhaRunStore *s, FILE *out) {
    sqlite3 *db = aha_runstore_db(s);
    sqlite3_stmt *st;
    fputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>aha run report</title>\n"
          "<style>body{font-family:sans-serif;margin:20px;max-width:1000px}figure{display:inline-block;margin:6px}"
          "pre{white-space:pre-wrap;background:#f6f6f6;padding:6px;font-size:12px}pre.prompt{background:#eef}"
          ".meta{font-size:12px;color:#555;margin:8px 0 2px}</style></head><body>\n<h1>aha run report</h1>\n",
          out);
    if (sqlite3_prepare_v2(db, "SELECT started_at, host, seed, version, (SELECT count(*) FROM steps),"
                               " (SELECT count(*) FROM rollouts) FROM run", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        fputs("<p>started ", out);
        html_escape(out, (const char *)sqlite3_column_text(st, 0));
        fputs(" on ", out);
        html_escape(out, (const char *)sqlite3_column_text(st, 1));
        fprintf(out, ", seed %lld, aha %s: %d steps, %d rollouts</p>\n", (long long)sqlite3_column_int64(st, 2),
                sqlite3_column_text(st, 3), sqlite3_column_int(st, 4), sqlite3_column_int(st, 5));
    }
    sqlite3_finalize(st);
    AHA_TRY(plot_rewards(db, out));
    static const char *const len[] = {"len_mean", "len_max"};
    static const char *const kl[] = {"kl"};
    static const char *const entropy[] = {"entropy"};
    static const char *const clip[] = {"clip_low", "clip_high"};
    static const char *const trunc[] = {"frac_truncated"};
    static const char *const grad[] = {"grad_norm"};
    static const char *const think[] = {"think_frac"};
    AHA_TRY(plot_columns(db, out, "response length (tokens)", len, 2));
    AHA_TRY(plot_columns(db, out, "KL to the reference", kl, 1));
    AHA_TRY(plot_columns(db, out, "entropy", entropy, 1));
    AHA_TRY(plot_columns(db, out, "clip fractions", clip, 2));
    AHA_TRY(plot_columns(db, out, "stopped by length", trunc, 1));
    AHA_TRY(plot_columns(db, out, "share of completions with <think>", think, 1));
    AHA_TRY(plot_columns(db, out, "gradient norm", grad, 1));
    AHA_TRY(write_samples(db, out));
    fputs("<h2>Recipe</h2>\n<pre>", out);
    if (sqlite3_prepare_v2(db, "SELECT recipe FROM run", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        html_escape(out, (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    fputs("</pre>\n</body></html>\n", out);
    if (ferror(out)) return aha_errorf("report: writing the page failed");
    return 0;
}
