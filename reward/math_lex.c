/* From a raw answer string to LaTeX tokens.
 *
 * math_normalize works on the string: unicode (NFKC via utf8proc, then the few math symbols
 * NFKC leaves alone), math delimiters and dollars, \text{}-like wrappers (units inside are
 * dropped), degree marks, spacing and sizing commands, trailing unit words, "and"/"or".
 * math_tokenize then cuts the result into the tokens the parser reads. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "aha/error.h"
#include "reward/math_internal.h"

/* ---------------------------------------------------------------------------------------- */
/* A growable string */

typedef struct {
    char *data;
    size_t len, cap;
    int oom;
    int degrees; /* a degree mark or unit was dropped */
} Buf;

static void buf_put(Buf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        while (cap < b->len + n + 1) cap *= 2;
        char *data = aha_realloc(b->data, cap);
        if (!data) {
            b->oom = 1;
            return;
        }
        b->data = data;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void buf_puts(Buf *b, const char *s) { buf_put(b, s, strlen(s)); }

static char *buf_finish(Buf *b) {
    if (b->oom) {
        free(b->data);
        return NULL;
    }
    if (!b->data) buf_put(b, "", 0);
    return b->data;
}

uint64_t math_hash(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* ---------------------------------------------------------------------------------------- */
/* Unicode */

static const struct {
    const char *from, *to;
} unicode_map[] = {
    {"\xe2\x88\x92", "-"},         {"\xe2\x80\x93", "-"},          {"\xe2\x80\x94", "-"},
    {"\xc3\x97", "\\times "},      {"\xc3\xb7", "\\div "},         {"\xc2\xb7", "\\cdot "},
    {"\xe2\x8b\x85", "\\cdot "},   {"\xcf\x80", "\\pi "},          {"\xe2\x88\x9e", "\\infty "},
    {"\xe2\x88\x9a", "\\sqrt "},   {"\xe2\x89\xa4", "\\le "},      {"\xe2\x89\xa5", "\\ge "},
    {"\xe2\x89\xa0", "\\ne "},     {"\xc2\xb0", "\\degree "},      {"\xc2\xb2", "^2"},
    {"\xc2\xb3", "^3"},            {"\xc2\xb1", "\\pm "},          {"\xe2\x88\x93", "\\mp "},
    {"\xe2\x88\xaa", "\\cup "},    {"\xe2\x88\x88", "\\in "},      {"\xe2\x81\x84", "/"},
    {"\xc2\xa0", " "},             {"\xc2\xbd", " 1/2"},           {"\xc2\xbc", " 1/4"},
    {"\xc2\xbe", " 3/4"},          {"\xe2\x88\x97", "*"},          {"\xe2\x84\x9d", "\\mathbb{R}"},
    {"\xe2\x8c\x8a", "\\lfloor "},   {"\xe2\x8c\x8b", "\\rfloor "},   {"\xe2\x8c\x88", "\\lceil "},
    {"\xe2\x8c\x89", "\\rceil "},
};

static int has_non_ascii(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80) return 1;
    return 0;
}

static char *map_unicode(const char *s) {
    Buf b = {0};
    while (*s) {
        if ((unsigned char)*s < 0x80) { /* every mapped symbol starts with a non-ASCII byte */
            const char *run = s;
            while (*s && (unsigned char)*s < 0x80) s++;
            buf_put(&b, run, (size_t)(s - run));
            continue;
        }
        size_t i, n = sizeof unicode_map / sizeof unicode_map[0];
        for (i = 0; i < n; i++) {
            size_t k = strlen(unicode_map[i].from);
            if (strncmp(s, unicode_map[i].from, k) == 0) {
                buf_puts(&b, unicode_map[i].to);
                s += k;
                break;
            }
        }
        if (i == n) buf_put(&b, s++, 1);
    }
    return buf_finish(&b);
}

/* Symbols first (NFKC would turn the superscript two into a plain 2), then NFKC for
 * full-width digits and the like, then the symbols NFKC itself produced. */
static char *normalize_unicode(const char *s) {
    char *mapped = map_unicode(s);
    if (!mapped || !has_non_ascii(mapped)) return mapped;
    char *nfkc = (char *)utf8proc_NFKC((const utf8proc_uint8_t *)mapped);
    if (!nfkc) return mapped; /* not valid UTF-8: compare it as it is */
    free(mapped);
    char *again = map_unicode(nfkc);
    free(nfkc);
    return again;
}

/* ---------------------------------------------------------------------------------------- */
/* Words */

static const char *const unit_words[] = {
    "cm", "mm", "km", "meter", "meters", "metre", "metres", "inch", "inches", "ft", "foot", "feet",
    "yard", "yards", "yd", "mile", "miles", "mph", "kg", "gram", "grams", "pound", "pounds", "lb",
    "lbs", "oz", "ounce", "ounces", "liter", "liters", "litre", "litres", "ml", "sec", "second",
    "seconds", "minute", "minutes", "min", "mins", "hour", "hours", "hr", "hrs", "day", "days",
    "week", "weeks", "month", "months", "year", "years", "dollar", "dollars", "cent", "cents",
    "unit", "units", "degree", "degrees", "deg", "square", "sq", "cubic", "radians", "radian",
    "cm2", "m2", "km2", "kmh", "kph", "mps", "gallon", "gallons", "gal", "mpg", "cc", "hz", "khz",
    "mg", "ms", "kw", "kwh", "watt", "watts", "volt", "volts", "newton", "newtons", "joule", "joules",
    "person", "people", "item", "items", "piece", "pieces", "page", "pages",
};

/* Single letters that are units only inside a compound unit (km/h, m/s^2): alone they are
 * more likely variables. */
static const char compound_unit_letters[] = "mshgNJWVAKL";

static int is_unit_word(const char *w, size_t n) {
    for (size_t i = 0; i < sizeof unit_words / sizeof unit_words[0]; i++)
        if (strlen(unit_words[i]) == n && strncasecmp(unit_words[i], w, n) == 0) return 1;
    return 0;
}

/* Every word of [s, end) is a unit (and there is at least one): "square feet", " cm", and
 * compound units: "km/h", "m/s^2", "m/s^{2}", "kg*m", "dollars per hour", "per unit". With
 * compound set the group stands in a compound (a '/' or '^' follows it), so single-letter
 * units count too. */
static int all_unit_words(const char *s, const char *end, int compound) {
    int words = 0, pers = 0, joints = 0;

    size_t n0 = 0;
    while (s < end) {
        while (s < end && (isspace((unsigned char)*s) || *s == '.')) s++;
        if (s < end && (*s == '/' || *s == '*' || *s == '-')) {
            s++, joints++;
            continue;
        }
        if (s < end && *s == '^') { /* a power: ^2, ^{2}, ^{-1} */
            s++;
            if (s < end && *s == '{') {
                s++;
                if (s < end && *s == '-') s++;
                if (s >= end || !isdigit((unsigned char)*s)) return 0;
                while (s < end && isdigit((unsigned char)*s)) s++;
                if (s >= end || *s != '}') return 0;
                s++;
            } else {
                if (s < end && *s == '-') s++;
                if (s >= end || !isdigit((unsigned char)*s)) return 0;
                s++;
            }
            joints++;
            continue;
        }
        const char *w = s;
        while (s < end && isalnum((unsigned char)*s)) s++;
        if (s == w) return s == end && words > 0;
        size_t n = (size_t)(s - w);
        if (n == 3 && strncasecmp(w, "per", 3) == 0) {
            pers++;
            continue;
        }
        if (!is_unit_word(w, n) && !(n == 1 && strchr(compound_unit_letters, *w))) return 0;
        if (words == 0) n0 = n;
        words++;
    }
    if (words == 0) return 0;
    /* a lone letter is a unit only in a compound: "m/s", "m^2", "\text{m}/\text{s}" */
    if (words == 1 && n0 == 1 && !joints && !pers && !compound) return 0;
    return 1;
}

static int mentions_degrees(const char *s, const char *end) {
    for (const char *p = s; p + 3 <= end; p++)
        if (strncasecmp(p, "deg", 3) == 0) return 1;
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* The string pass */

static int is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

static int name_is(const char *name, size_t n, const char *const *list) {
    for (; *list; list++)
        if (strlen(*list) == n && memcmp(*list, name, n) == 0) return 1;
    return 0;
}

static const char *const text_commands[] = {
    "text", "textbf", "textit", "textrm", "textup", "textnormal", "textsf", "texttt", "mathrm",
    "mathbf", "mathit", "mathsf", "mathtt", "mbox", "hbox", "operatorname", "boldsymbol", "bm",
    "mathbb", "mathcal", "emph", NULL};
static const char *const dropped_commands[] = {
    "left", "right", "big", "Big", "bigg", "Bigg", "bigl", "bigr", "Bigl", "Bigr", "biggl",
    "biggr", "Biggl", "Biggr", "displaystyle", "textstyle", "scriptstyle", "limits", "nolimits",
    "quad", "qquad", "boxed", "fbox", "circ", "degree", "dollar", "mathstrut", "ensuremath",
    "hfill", "middle", NULL};

/* The brace group at s ('{'): the position after its '}', or NULL when unbalanced. */
static const char *skip_group(const char *s, const char *end) {
    int depth = 0;
    for (const char *p = s; p < end; p++) {
        if (*p == '\\' && p + 1 < end) {
            p++;
            continue;
        }
        if (*p == '{') depth++;
        else if (*p == '}' && --depth == 0) return p + 1;
    }
    return NULL;
}

/* At '^': a degree mark "^\circ", "^{\circ}", "^\degree"; returns its end or NULL. */
static const char *degree_mark(const char *s, const char *end) {
    const char *p = s + 1;
    while (p < end && *p == ' ') p++;
    int braced = p < end && *p == '{';
    if (braced) p++;
    while (p < end && *p == ' ') p++;
    if (end - p >= 5 && strncmp(p, "\\circ", 5) == 0) p += 5;
    else if (end - p >= 7 && strncmp(p, "\\degree", 7) == 0) p += 7;
    else return NULL;
    while (p < end && *p == ' ') p++;
    if (braced) {
        if (p >= end || *p != '}') return NULL;
        p++;
    }
    return p;
}

/* After a dropped unit: its exponent ("\text{ cm}^2", "^{3}"). */
static const char *skip_unit_power(const char *s, const char *end) {
    const char *p = s;
    while (p < end && *p == ' ') p++;
    if (p < end && *p == '^') {
        p++;
        if (p < end && isdigit((unsigned char)*p)) return p + 1;
        if (p + 2 < end && p[0] == '{' && isdigit((unsigned char)p[1]) && p[2] == '}') return p + 3;
    }
    return s;
}

/* A unit group: \text{...} (or \mathrm, \mbox, ...) whose words are all units. Returns
 * its end, or NULL. */
static const char *unit_group(const char *s, const char *end, int compound) {
    if (s >= end || *s != '\\') return NULL;
    const char *q = s + 1;
    while (q < end && isalpha((unsigned char)*q)) q++;
    if (!name_is(s + 1, (size_t)(q - s - 1), text_commands)) return NULL;
    while (q < end && *q == ' ') q++;
    if (q >= end || *q != '{') return NULL;
    const char *close = skip_group(q, end);
    if (!close || !all_unit_words(q + 1, close - 1, compound)) return NULL;
    return close;
}

/* After a dropped unit: its power and the rest of a compound unit written in pieces,
 * "\text{km}/\text{h}", "\text{m}/\text{s}^2". */
static const char *skip_unit_rest(const char *s, const char *end) {
    const char *p = skip_unit_power(s, end);
    for (int pieces = 0; pieces < 4; pieces++) {
        const char *q = p;
        while (q < end && *q == ' ') q++;
        if (q >= end || (*q != '/' && *q != '*')) break;
        q++;
        while (q < end && *q == ' ') q++;
        const char *after = unit_group(q, end, 1);
        if (!after) break;
        p = skip_unit_power(after, end);
    }
    return p;
}

static void pass(Buf *b, const char *s, const char *end, int depth);

/* One script of \mathbb{R}: "^+", "_{>0}", "^{\ge 0}": its content without spaces appended
 * to out; returns the position after it, or NULL when there is none. */
static const char *script(const char *s, const char *end, char *out, size_t cap) {
    const char *p = s;
    while (p < end && *p == ' ') p++;
    if (p >= end || (*p != '^' && *p != '_')) return NULL;
    p++;
    while (p < end && *p == ' ') p++;
    const char *from = p, *to;
    if (p < end && *p == '{') {
        const char *close = skip_group(p, end - p > 32 ? p + 32 : end);
        if (!close) return NULL;
        from = p + 1, to = close - 1, p = close;
    } else if (p < end && *p == '\\') {
        to = p + 1;
        while (to < end && isalpha((unsigned char)*to)) to++;
        p = to;
    } else if (p < end) {
        to = ++p;
    } else {
        return NULL;
    }
    size_t n = strlen(out);
    for (const char *c = from; c < to && n + 1 < cap; c++)
        if (*c != ' ') out[n++] = *c;
    out[n] = '\0';
    return p;
}

/* \mathbb{R} and its halves as intervals: \mathbb{R} is (-\infty, \infty), \mathbb{R}^+ and
 * \mathbb{R}_{>0} are (0, \infty), \mathbb{R}_{\ge 0} is [0, \infty), and so on. At s: after
 * "\mathbb". Returns the position after it, or NULL when it is another set (left to the
 * usual unwrapping). */
static const char *real_line(Buf *b, const char *s, const char *end) {
    const char *p = s;
    while (p < end && *p == ' ') p++;
    if (end - p >= 3 && p[0] == '{' && p[1] == 'R' && p[2] == '}') p += 3;
    else if (p < end && *p == 'R' && (p + 1 == end || !isalpha((unsigned char)p[1]))) p += 1;
    else return NULL;
    char scripts[64] = "";
    for (int k = 0; k < 2; k++) {
        const char *after = script(p, end, scripts, sizeof scripts);
        if (!after) break;
        p = after;
    }
    static const struct {
        const char *scripts, *interval;
    } forms[] = {
        {"", "(-\\infty,\\infty)"},       {"+", "(0,\\infty)"},        {">0", "(0,\\infty)"},
        {"-", "(-\\infty,0)"},             {"<0", "(-\\infty,0)"},       {"\\ge0", "[0,\\infty)"},
        {"\\geq0", "[0,\\infty)"},         {"\\geqslant0", "[0,\\infty)"}, {"+0", "[0,\\infty)"},
        {"0+", "[0,\\infty)"},             {"\\le0", "(-\\infty,0]"},  {"\\leq0", "(-\\infty,0]"},
        {"-0", "(-\\infty,0]"},            {"0-", "(-\\infty,0]"},      {"\\geq 0", "[0,\\infty)"},
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        if (strcmp(scripts, forms[i].scripts) == 0) {
            buf_puts(b, " ");
            buf_puts(b, forms[i].interval);
            buf_puts(b, " ");
            return p;
        }
    }
    return NULL;
}

static const char *text_command(Buf *b, const char *p, const char *end, int depth) {
    while (p < end && *p == ' ') p++;
    if (p >= end || *p != '{') return p; /* "\text 5": nothing to unwrap */
    const char *close = skip_group(p, end);
    if (!close) close = end;
    const char *inner = p + 1, *inner_end = close > inner && close[-1] == '}' ? close - 1 : close;
    const char *next = close;
    while (next < end && *next == ' ') next++;
    /* in a compound, or spaced off the number inside the group (\text{ m}), a letter is a unit */
    int compound = (next < end && (*next == '/' || *next == '^')) || (inner < inner_end && *inner == ' ');
    if (all_unit_words(inner, inner_end, compound)) {
        if (mentions_degrees(inner, inner_end)) b->degrees = 1;
        return skip_unit_rest(close, end);
    }
    buf_puts(b, " ");
    pass(b, inner, inner_end, depth + 1);
    buf_puts(b, " ");
    return close;
}

static void pass(Buf *b, const char *s, const char *end, int depth) {
    const char *p = s;
    while (p < end) {
        char c = *p;
        if (c == '{' && p + 2 < end && p[1] == ',' && p[2] == '}') {
            buf_puts(b, ","); /* 1{,}000 */
            p += 3;
        } else if (c == '$' || c == '~') {
            if (c == '~') buf_puts(b, " ");
            p++;
        } else if (c == '^') {
            const char *after = degree_mark(p, end);
            if (after) p = after, b->degrees = 1;
            else buf_put(b, p++, 1);
        } else if (c == '\\' && p + 1 < end && is_letter(p[1])) {
            const char *name = p + 1, *q = name;
            while (q < end && is_letter(*q)) q++;
            size_t n = (size_t)(q - name);
            const char *after_set = n == 6 && memcmp(name, "mathbb", 6) == 0 ? real_line(b, q, end) : NULL;
            if (after_set) {
                p = after_set;
            } else if (depth < 8 && name_is(name, n, text_commands)) {
                p = text_command(b, q, end, depth);
            } else if (name_is(name, n, dropped_commands)) {
                if ((n == 6 && memcmp(name, "degree", 6) == 0) || (n == 4 && memcmp(name, "circ", 4) == 0)) b->degrees = 1;
                p = q;
                if ((n == 4 && memcmp(name, "left", 4) == 0) || (n == 5 && memcmp(name, "right", 5) == 0)) {
                    if (p < end && *p == '.') p++; /* \left. and \right. are invisible */
                }
            } else if ((n == 6 && memcmp(name, "hspace", 6) == 0) || (n == 7 && memcmp(name, "phantom", 7) == 0)) {
                while (q < end && *q == ' ') q++;
                /* a length is short: the bound keeps text full of unclosed \\hspace{ linear */
                const char *after = q < end && *q == '{' ? skip_group(q, end - q > 64 ? q + 64 : end) : NULL;
                p = after ? after : q;
            } else {
                buf_put(b, p, (size_t)(q - p));
                p = q;
                if (p < end && is_letter(*p) == 0 && *p != ' ') continue;
                buf_puts(b, " "); /* keep "\pi r" from becoming "\pir" */
            }
        } else if (c == '\\' && p + 1 < end) {
            char d = p[1];
            if (d == ',' || d == '!' || d == ';' || d == ':' || d == ' ' || d == '$' || d == '(' || d == ')' ||
                d == '[' || d == ']' || d == '\n')
            {
                /* spacing, a literal dollar, math delimiters; "10,\! 000" is one number */
                if ((d == '!' || d == ',') && b->len > 0 && b->data[b->len - 1] == ',')
                    while (p + 2 < end && p[2] == ' ') p++;
            }
            else if (d == '%') buf_puts(b, "%");
            else if (d == '&') buf_puts(b, " ");
            else buf_put(b, p, 2); /* \{ \} \\ \| */
            p += 2;
        } else {
            buf_put(b, p++, 1);
        }
    }
}

/* Trailing words that are units ("5 cm", "12 square feet", "cm^2"); 1 when "degrees" was one. */
static int strip_trailing_units(char *s) {
    int degrees = 0;
    size_t n = strlen(s);
    for (;;) {
        while (n > 0 && (isspace((unsigned char)s[n - 1]) || s[n - 1] == '.')) n--;
        size_t e = n;
        if (e >= 2 && isdigit((unsigned char)s[e - 1]) && s[e - 2] == '^') e -= 2;
        else if (e >= 4 && s[e - 1] == '}' && isdigit((unsigned char)s[e - 2]) && s[e - 3] == '{' && s[e - 4] == '^')
            e -= 4;
        size_t w = e;
        while (w > 0 && is_letter(s[w - 1])) w--;
        if (w == e || e - w < 2 || !is_unit_word(s + w, e - w)) break;
        if (w > 0 && s[w - 1] == '\\') break;
        size_t before = w;
        while (before > 0 && isspace((unsigned char)s[before - 1])) before--;
        if (before == 0) break; /* the whole answer is the word */
        if (strncasecmp(s + w, "deg", 3) == 0) degrees = 1;
        n = w;
    }
    s[n] = '\0';
    return degrees;
}

/* A whole answer in quotes, "5", '5', ``5'', or curly ones: the quotes go. */
static void strip_quotes(char *s) {
    static const char *const opening[] = {"``", "\"", "'", "\xe2\x80\x9c", "\xe2\x80\x98", NULL};
    static const char *const closing[] = {"''", "\"", "'", "\xe2\x80\x9d", "\xe2\x80\x99", NULL};
    for (int round = 0; round < 2; round++) {
        size_t n = strlen(s);
        size_t open = 0, close = 0;
        for (int i = 0; opening[i] && !open; i++)
            if (strncmp(s, opening[i], strlen(opening[i])) == 0) open = strlen(opening[i]);
        for (int i = 0; closing[i] && !close; i++) {
            size_t k = strlen(closing[i]);
            if (n >= k && strcmp(s + n - k, closing[i]) == 0) close = k;
        }
        if (!open || !close || open + close > n) return;
        memmove(s, s + open, n - open - close);
        s[n - open - close] = '\0';
        size_t a = 0, m = strlen(s);
        while (a < m && isspace((unsigned char)s[a])) a++;
        while (m > a && isspace((unsigned char)s[m - 1])) m--;
        memmove(s, s + a, m - a);
        s[m - a] = '\0';
    }
}

/* Bare connecting words: "2 and 3", "1 or -1" list; "percent" is a % sign. */
static char *replace_words(const char *s) {
    Buf b = {0};
    const char *p = s;
    while (*p) {
        if (is_letter(*p) && (p == s || (!is_letter(p[-1]) && p[-1] != '\\'))) {
            const char *q = p;
            while (is_letter(*q)) q++;
            size_t n = (size_t)(q - p);
            if ((n == 3 && strncasecmp(p, "and", 3) == 0) || (n == 2 && strncasecmp(p, "or", 2) == 0))
                buf_puts(&b, ",");
            else if (n == 7 && strncasecmp(p, "percent", 7) == 0)
                buf_puts(&b, "%");
            else
                buf_put(&b, p, n);
            p = q;
        } else {
            buf_put(&b, p++, 1);
        }
    }
    return buf_finish(&b);
}

char *math_trailing_math(const char *text) {
    size_t n = strlen(text);
    for (;;) { /* trailing words */
        while (n > 0 && (isspace((unsigned char)text[n - 1]) || text[n - 1] == '.')) n--;
        size_t w = n;
        while (w > 0 && is_letter(text[w - 1])) w--;
        if (n - w < 2 || (w > 0 && (text[w - 1] == '\\' || text[w - 1] == '_'))) break;
        n = w;
    }
    size_t start = 0;
    for (size_t i = 0; i < n;) { /* after the last word */
        if (!is_letter(text[i])) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < n && is_letter(text[j])) j++;
        int standalone = (i == 0 || isspace((unsigned char)text[i - 1])) &&
                         (j == n || isspace((unsigned char)text[j]) || text[j] == ':');
        if (j - i >= 2 && standalone) start = j;
        i = j;
    }
    while (start < n && (isspace((unsigned char)text[start]) || text[start] == ':')) start++;
    return math_strndup_trimmed(text + start, text + n);
}

char *math_normalize(const char *answer, int *degrees) {
    char *text = normalize_unicode(answer);
    if (!text) return NULL;
    Buf b = {0};
    pass(&b, text, text + strlen(text), 0);
    free(text);
    int dropped_degrees = b.degrees;
    char *passed = buf_finish(&b);
    if (!passed) return NULL;
    char *worded = replace_words(passed);
    free(passed);
    if (!worded) return NULL;
    if (strip_trailing_units(worded)) dropped_degrees = 1;
    char *trimmed = math_strndup_trimmed(worded, worded + strlen(worded));
    free(worded);
    if (trimmed) strip_quotes(trimmed);
    if (degrees) *degrees = dropped_degrees;
    return trimmed;
}

/* ---------------------------------------------------------------------------------------- */
/* Tokens */

static const char *const function_names[] = {"sin", "cos", "tan", "cot", "sec", "csc", "arcsin", "arccos",
                                             "arctan", "sinh", "cosh", "tanh", "ln", "log", "exp", NULL};

static int function_index(const char *name, size_t n) {
    for (int i = 0; function_names[i]; i++)
        if (strlen(function_names[i]) == n && memcmp(function_names[i], name, n) == 0) return i;
    return -1;
}

static int push(MathCtx *ctx, MathTokenKind kind, int sub, int begin, int end, int spaced) {
    if (ctx->ntokens == ctx->tokens_cap) {
        int cap = ctx->tokens_cap ? ctx->tokens_cap * 2 : 32;
        MathToken *tokens = aha_realloc(ctx->tokens, (size_t)cap * sizeof *tokens);
        if (!tokens) return -1;
        ctx->tokens = tokens;
        ctx->tokens_cap = cap;
    }
    MathToken *t = &ctx->tokens[ctx->ntokens++];
    memset(t, 0, sizeof *t);
    t->kind = kind;
    t->sub = sub;
    t->spaced = spaced;
    t->text_begin = begin;
    t->text_end = end;
    return 0;
}

/* A subscript at s[i] == '_': its text range (without braces); returns the index after it,
 * or -1 when there is no well-formed subscript. */
static int subscript(const char *s, int i, int *begin, int *end) {
    int j = i + 1;
    if (s[j] == '{') {
        int depth = 0, k = j;
        for (; s[k] && k - j < 64; k++) { /* a subscript is short; this bounds the scan */
            if (s[k] == '{') depth++;
            else if (s[k] == '}' && --depth == 0) break;
        }
        if (s[k] != '}' || depth != 0) return -1;
        *begin = j + 1;
        *end = k;
        return k + 1;
    }
    if (isalnum((unsigned char)s[j])) {
        *begin = j;
        *end = j + 1;
        return j + 1;
    }
    return -1;
}

static int command(MathCtx *ctx, const char *name, size_t n, int begin, int end, int spaced, int *digit_args,
                   int *ok) {
#define IS(lit) (n == sizeof(lit) - 1 && memcmp(name, lit, n) == 0)
    int f = function_index(name, n);
    if (f >= 0) return push(ctx, TK_FUNC, f, begin, end, spaced);
    if (IS("frac") || IS("dfrac") || IS("tfrac") || IS("cfrac")) {
        *digit_args = 2;
        return push(ctx, TK_FRAC, 0, begin, end, spaced);
    }
    if (IS("binom") || IS("dbinom") || IS("tbinom")) {
        *digit_args = 2;
        return push(ctx, TK_BINOM, 0, begin, end, spaced);
    }
    if (IS("sqrt")) {
        *digit_args = 1;
        return push(ctx, TK_SQRT, 0, begin, end, spaced);
    }
    if (IS("pi")) return push(ctx, TK_PI, 0, begin, end, spaced);
    if (IS("infty") || IS("infin")) return push(ctx, TK_INFTY, 0, begin, end, spaced);
    if (IS("cdot") || IS("times") || IS("ast")) return push(ctx, TK_STAR, 0, begin, end, spaced);
    if (IS("div")) return push(ctx, TK_SLASH, 0, begin, end, spaced);
    if (IS("pm")) return push(ctx, TK_PM, 0, begin, end, spaced);
    if (IS("mp")) return push(ctx, TK_MP, 0, begin, end, spaced);
    if (IS("cup")) return push(ctx, TK_CUP, 0, begin, end, spaced);
    if (IS("in")) return push(ctx, TK_IN, 0, begin, end, spaced);
    if (IS("le") || IS("leq") || IS("leqslant")) return push(ctx, TK_REL, REL_LE, begin, end, spaced);
    if (IS("ge") || IS("geq") || IS("geqslant")) return push(ctx, TK_REL, REL_GE, begin, end, spaced);
    if (IS("lt")) return push(ctx, TK_REL, REL_LT, begin, end, spaced);
    if (IS("gt")) return push(ctx, TK_REL, REL_GT, begin, end, spaced);
    if (IS("ne") || IS("neq")) return push(ctx, TK_REL, REL_NE, begin, end, spaced);
    if (IS("approx")) return push(ctx, TK_REL, REL_EQ, begin, end, spaced);
    if (IS("lvert") || IS("rvert") || IS("vert")) return push(ctx, TK_BAR, 0, begin, end, spaced);
    if (IS("langle")) return push(ctx, TK_LANGLE, 0, begin, end, spaced);
    if (IS("rangle")) return push(ctx, TK_RANGLE, 0, begin, end, spaced);
    if (IS("emptyset") || IS("varnothing")) { /* the empty set is \{\} */
        if (push(ctx, TK_LSET, 0, begin, end, spaced) != 0) return -1;
        return push(ctx, TK_RSET, 0, begin, end, 0);
    }
    if (IS("lfloor")) return push(ctx, TK_LFLOOR, 0, begin, end, spaced);
    if (IS("rfloor")) return push(ctx, TK_RFLOOR, 0, begin, end, spaced);
    if (IS("lceil")) return push(ctx, TK_LCEIL, 0, begin, end, spaced);
    if (IS("rceil")) return push(ctx, TK_RCEIL, 0, begin, end, spaced);
    if (IS("lbrace")) return push(ctx, TK_LSET, 0, begin, end, spaced);
    if (IS("rbrace")) return push(ctx, TK_RSET, 0, begin, end, spaced);
    if (IS("begin") || IS("end")) {
        /* Only matrix environments mean something in an answer. */
        const char *s = ctx->text;
        int j = end;
        while (s[j] == ' ') j++;
        if (s[j] != '{') return *ok = 0, 0;
        int k = j + 1;
        while (is_letter(s[k]) && k - j < 24) k++;
        int array = k - j - 1 == 5 && memcmp(s + j + 1, "array", 5) == 0;
        int matrix = k - j - 1 >= 6 && memcmp(s + k - 6, "matrix", 6) == 0 &&
                     !(k - j - 1 == 7 && (s[j + 1] == 'v' || s[j + 1] == 'V')); /* vmatrix: a determinant */
        if (s[k] != '}' || !(array || matrix)) return *ok = 0, 0;
        int after = k + 1;
        if (array && IS("begin")) { /* the column spec: \begin{array}{cc} */
            while (s[after] == ' ') after++;
            if (s[after] == '{') {
                int q = after + 1;
                while (s[q] && s[q] != '}' && q - after < 32) q++;
                if (s[q] != '}') return *ok = 0, 0;
                after = q + 1;
            }
        }
        return push(ctx, IS("begin") ? TK_MAT_OPEN : TK_MAT_CLOSE, 0, begin, after, spaced);
    }
    /* Greek letters and other symbols: a variable named by the command. */
    int r = push(ctx, TK_IDENT, 0, begin, end, spaced);
    if (r == 0) ctx->tokens[ctx->ntokens - 1].name = math_hash(name - 1, n + 1);
    return r;
#undef IS
}

/* After \log (the last token): a base subscript makes it \log_b. "\log_{10}" leaves the braces
 * to the tokenizer; "\log_28" is base 2 of 8, one character as TeX reads it. Returns the
 * position after the '_' part it consumed. */
static int log_base(MathCtx *ctx, int i, int *ok) {
    const char *s = ctx->text;
    MathToken *f = &ctx->tokens[ctx->ntokens - 1];
    if (f->kind != TK_FUNC || f->sub != FN_LOG || s[i] != '_') return i;
    f->sub = FN_LOG_BASE;
    i++;
    if (s[i] == '{') return i;
    if (isdigit((unsigned char)s[i])) {
        if (push(ctx, TK_NUM, 0, i, i + 1, 0) != 0) return -1;
        ctx->tokens[ctx->ntokens - 1].number = s[i] - '0';
        ctx->tokens[ctx->ntokens - 1].is_integer = 1;
        return i + 1;
    }
    if (s[i] == 'e' && !is_letter(s[i + 1])) {
        if (push(ctx, TK_EULER, 0, i, i + 1, 0) != 0) return -1;
        return i + 1;
    }
    *ok = 0;
    return i;
}

/* The tokenizer's place in ctx->text; each lex_* function reads one token at s[i]. */
typedef struct {
    MathCtx *ctx;
    const char *s;  /* ctx->text */
    int i;          /* the next character */
    int begin;      /* where the token being read starts */
    int spaced;     /* white space came before it */
    int digit_args; /* after \frac, \binom, \sqrt: arguments still read as single digits (\frac12) */
    int *ok;        /* cleared when the text is not an answer the parser can read */
    int stop;       /* a word: the answer reads as text, so tokens end here with *ok still set */
} Lexer;

/* Where the number at s[i] ends: digits with thousands separators, a decimal part, a repeating
 * part \overline{...} (its digits in [*repeat_begin, *repeat_end)), an exponent. */
static int number_end(const char *s, int i, int *integer, int *repeat_begin, int *repeat_end) {
    int j = i, run = 0;
    while (isdigit((unsigned char)s[j])) j++, run++;
    /* Thousands separators: 1,234,567 or 1 234 567 (groups of exactly three, one kind of
     * separator). */
    char separator = s[j];
    if (run >= 1 && run <= 3 && s[i] != '0' && (separator == ',' || separator == ' '))
        while (s[j] == separator && isdigit((unsigned char)s[j + 1]) && isdigit((unsigned char)s[j + 2]) &&
               isdigit((unsigned char)s[j + 3]) && !isdigit((unsigned char)s[j + 4]) &&
               !(separator == ' ' && s[j + 4] == '/'))
            j += 4;
    if (s[j] == '.' && (isdigit((unsigned char)s[j + 1]) || strncmp(s + j + 1, "\\overline{", 10) == 0)) {
        *integer = 0;
        j++;
        while (isdigit((unsigned char)s[j])) j++;
    }
    if (!*integer && strncmp(s + j, "\\overline{", 10) == 0) {
        int r = j + 10;
        while (isdigit((unsigned char)s[r])) r++;
        if (s[r] == '}' && r > j + 10) {
            *repeat_begin = j + 10;
            *repeat_end = r;
            j = r + 1;
        }
    }
    if ((s[j] == 'e' || s[j] == 'E') &&
        (isdigit((unsigned char)s[j + 1]) || ((s[j + 1] == '-' || s[j + 1] == '+') && isdigit((unsigned char)s[j + 2])))) {
        *integer = 0;
        j += 2;
        while (isdigit((unsigned char)s[j])) j++;
    }
    return j;
}

/* The value of the number in s[i, j), separators left out, a repeating part added. */
static int number_value(const char *s, int i, int j, int repeat_begin, int repeat_end, double *value) {
    char small[64], *digits = small;
    if (j - i + 1 > (int)sizeof small && !(digits = aha_malloc((size_t)(j - i + 1)))) return -1;
    int k = 0, decimals = -1;
    for (int t = i; t < (repeat_begin >= 0 ? repeat_begin - 10 : j); t++) {
        if (s[t] == ',' || s[t] == ' ') continue;
        if (decimals >= 0) decimals++;
        if (s[t] == '.') decimals = 0;
        digits[k++] = s[t];
    }
    digits[k] = '\0';
    *value = strtod(digits, NULL);
    if (repeat_begin >= 0) { /* 0.1\overline{6} = 0.1 + 6 / (10 * 9) */
        double repeat = 0, nines = 1;
        for (int t = repeat_begin; t < repeat_end; t++) repeat = repeat * 10 + (s[t] - '0'), nines *= 10;
        *value += repeat / (pow(10, decimals > 0 ? decimals : 0) * (nines - 1));
    }
    if (digits != small) free(digits);
    return 0;
}

/* A number; `pending` digit arguments make it a single digit (\frac12). */
static int lex_number(Lexer *x, int pending) {
    MathCtx *ctx = x->ctx;
    const char *s = x->s;
    int i = x->i, j, integer = 1, repeat_begin = -1, repeat_end = -1;
    if (pending > 0 && isdigit((unsigned char)s[i])) {
        j = i + 1; /* \frac12: each argument is one digit, as in TeX */
        x->digit_args = pending - 1;
    } else {
        j = number_end(s, i, &integer, &repeat_begin, &repeat_end);
    }
    double value;
    if (number_value(s, i, j, repeat_begin, repeat_end, &value) != 0) return -1;
    if (push(ctx, TK_NUM, 0, x->begin, j, x->spaced) != 0) return -1;
    ctx->tokens[ctx->ntokens - 1].number = value;
    ctx->tokens[ctx->ntokens - 1].is_integer = integer;
    /* A base subscript (204_5) is part of how the number is written. */
    int sb, se;
    if (s[j] == '_') {
        int after = subscript(s, j, &sb, &se);
        if (after < 0) *x->ok = 0;
        else j = after;
        ctx->tokens[ctx->ntokens - 1].text_end = j;
        int base = 0;
        for (int t = sb; after >= 0 && t < se && base < 1000; t++)
            base = isdigit((unsigned char)s[t]) ? base * 10 + (s[t] - '0') : 1000;
        ctx->tokens[ctx->ntokens - 1].base = base;
    }
    x->i = j;
    return 0;
}

/* A run of letters: a function name, a word (the answer is text), or one variable a letter. */
static int lex_letters(Lexer *x) {
    MathCtx *ctx = x->ctx;
    const char *s = x->s;
    int i = x->i, j = i;
    char c = s[i];
    while (is_letter(s[j])) j++;
    int f = function_index(s + i, (size_t)(j - i));
    if (f >= 0) {
        if (push(ctx, TK_FUNC, f, x->begin, j, x->spaced) != 0) return -1;
        return (x->i = log_base(ctx, j, x->ok)) < 0 ? -1 : 0;
    }
    if (j - i >= 3) {
        ctx->looks_textual = 1;
        x->stop = 1;
        return 0;
    }
    /* Each letter is its own variable (xy = x*y); a subscript binds to the last. */
    if (c == 'e' && s[i + 1] != '_' && ctx->euler) { /* Euler's number */
        if (push(ctx, TK_EULER, 0, x->begin, x->begin + 1, x->spaced) != 0) return -1;
        x->i = i + 1;
        return 0;
    }
    if (push(ctx, TK_IDENT, 0, x->begin, x->begin + 1, x->spaced) != 0) return -1;
    ctx->idents++;
    ctx->e_idents += c == 'e' && s[i + 1] != '_';
    char name[64];
    size_t n = 0;
    name[n++] = c;
    x->i = ++i;
    int sb, se;
    if (s[i] == '_') {
        int after = subscript(s, i, &sb, &se);
        if (after < 0) {
            *x->ok = 0;
            return 0;
        }
        name[n++] = '_';
        for (int t = sb; t < se && n < sizeof name; t++)
            if (s[t] != ' ' && s[t] != '{' && s[t] != '}') name[n++] = s[t];
        x->i = after;
        ctx->tokens[ctx->ntokens - 1].text_end = after;
    }
    ctx->tokens[ctx->ntokens - 1].name = math_hash(name, n);
    return 0;
}

/* A command \name (see command()). */
static int lex_command(Lexer *x) {
    MathCtx *ctx = x->ctx;
    int i = x->i, j = i + 1;
    while (is_letter(x->s[j])) j++;
    int before = ctx->ntokens;
    if (command(ctx, x->s + i + 1, (size_t)(j - i - 1), x->begin, j, x->spaced, &x->digit_args, x->ok) != 0)
        return -1;
    i = ctx->ntokens > before ? ctx->tokens[ctx->ntokens - 1].text_end : j;
    if (ctx->ntokens > before && ctx->tokens[ctx->ntokens - 1].kind == TK_IDENT) ctx->idents++;
    if (ctx->ntokens > before && (i = log_base(ctx, i, x->ok)) < 0) return -1;
    x->i = i;
    return 0;
}

/* A backslash before a symbol: \{ \} (a set), \\ (a matrix row), \| . */
static int lex_escape(Lexer *x) {
    char d = x->s[x->i + 1];
    MathTokenKind kind;
    if (d == '{') kind = TK_LSET;
    else if (d == '}') kind = TK_RSET;
    else if (d == '\\') kind = TK_ROWSEP;
    else if (d == '|') kind = TK_BAR;
    else {
        *x->ok = 0;
        return 0;
    }
    if (push(x->ctx, kind, 0, x->begin, x->i + 2, x->spaced) != 0) return -1;
    x->i += 2;
    return 0;
}

/* An operator, a relation or a bracket. */
static int lex_symbol(Lexer *x) {
    const char *s = x->s;
    int i = x->i;
    MathTokenKind kind;
    int sub = 0, len = 1;
    switch (s[i]) {
    case '+': kind = TK_PLUS; break;
    case '-': kind = TK_MINUS; break;
    case '*': kind = TK_STAR; break;
    case '/': kind = TK_SLASH; break;
    case ':': kind = TK_SLASH; break; /* a ratio 3:4 */
    case '^': kind = TK_CARET; break; /* x^10 is x to the tenth, as people mean it */
    case '!':
        if (s[i + 1] == '=') kind = TK_REL, sub = REL_NE, len = 2;
        else kind = TK_BANG;
        break;
    case '%': kind = TK_PERCENT; break;
    case '|': kind = TK_BAR; break;
    case '(': kind = TK_LPAREN; break;
    case ')': kind = TK_RPAREN; break;
    case '[': kind = TK_LBRACK; break;
    case ']': kind = TK_RBRACK; break;
    case '{': kind = TK_LBRACE; break;
    case '}': kind = TK_RBRACE; break;
    case ',': kind = TK_COMMA; break;
    case ';': kind = TK_COMMA; break;
    case '&': kind = TK_AMP; break;
    case '=': kind = TK_REL, sub = REL_EQ; break;
    case '<':
        kind = TK_REL, sub = REL_LT;
        if (s[i + 1] == '=') sub = REL_LE, len = 2;
        break;
    case '>':
        kind = TK_REL, sub = REL_GT;
        if (s[i + 1] == '=') sub = REL_GE, len = 2;
        break;
    default: *x->ok = 0; return 0;
    }
    if (push(x->ctx, kind, sub, x->begin, i + len, x->spaced) != 0) return -1;
    x->i += len;
    return 0;
}

int math_tokenize(MathCtx *ctx, int *ok) {
    Lexer x = {.ctx = ctx, .s = ctx->text, .ok = ok};
    const char *s = x.s;
    *ok = 1;
    ctx->ntokens = 0;
    while (s[x.i] && *ok) {
        if (ctx->ntokens > MATH_MAX_TOKENS) {
            *ok = 0;
            break;
        }
        char c = s[x.i];
        if (isspace((unsigned char)c)) {
            x.spaced = 1;
            x.i++;
            continue;
        }
        int pending = x.digit_args;
        x.begin = x.i;
        x.digit_args = 0;
        int rc;
        if (isdigit((unsigned char)c) || (c == '.' && isdigit((unsigned char)s[x.i + 1]))) rc = lex_number(&x, pending);
        else if (is_letter(c)) rc = lex_letters(&x);
        else if (c == '\\' && is_letter(s[x.i + 1])) rc = lex_command(&x);
        else if (c == '\\') rc = lex_escape(&x);
        else rc = lex_symbol(&x);
        if (rc != 0) return -1;
        if (x.stop) return 0;
        x.spaced = 0;
    }
    return 0;
}
