/* The math answer checker: every equivalence rule with cases that must be equal and cases
 * that must not, extraction, gold parsing, and the score entry point. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "aha/error.h"
#include "aha/math_answer.h"

typedef struct {
    const char *answer, *gold;
    int expected; /* 1 equal, 0 not equal, -1 gold unparseable */
} Case;

static void check_cases(const Case *cases, size_t n) {
    int failures = 0;
    for (size_t i = 0; i < n; i++) {
        int got = aha_math_equal(cases[i].answer, cases[i].gold);
        if (got != cases[i].expected) {
            print_error("answer [%s] gold [%s]: expected %d, got %d\n", cases[i].answer, cases[i].gold,
                        cases[i].expected, got);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

#define CHECK(cases) check_cases(cases, sizeof cases / sizeof cases[0])

static void test_integers_and_thousands_separators(void **state) {
    (void)state;
    static const Case cases[] = {
        {"42", "42", 1},          {"1,000", "1000", 1},         {"1000", "1,000", 1},
        {"10,\\!080", "10080", 1}, {"11,\\! 111,\\! 111,\\! 100", "11111111100", 1},
        {"0042", "42", 1},        {"1{,}000", "1000", 1},      {"\xef\xbc\x91\xef\xbc\x92", "12", 1},        {"123456789012345678901234567890", "123456789012345678901234567890", 1},
        {"1 000 000", "1000000", 1}, {"1 000 000", "0", 0}, {"2 3", "6", 0}, {"2 3", "23", 0},
        {"43", "42", 0},          {"1,001", "1000", 0},          {"100", "1,000", 0},
        {"123456789012345678901234567891", "123456789012345678901234567890", 0},
        {"1000000001", "1000000000", 0}, {"1,2", "12", 0},
    };
    CHECK(cases);
}

static void test_decimals(void **state) {
    (void)state;
    static const Case cases[] = {
        {"0.5", "0.50", 1}, {".5", "0.5", 1}, {"2.0", "2", 1}, {"326.5", "326.50", 1}, {"3.14", "3.140", 1},
        {"0.51", "0.5", 0}, {"2.01", "2", 0}, {"3.1", "3.14", 0}, {"1.9999999", "2", 0},
    };
    CHECK(cases);
}

static void test_fractions(void **state) {
    (void)state;
    static const Case cases[] = {
        {"\\frac{3}{4}", "0.75", 1},  {"3/4", "\\frac34", 1},         {"\\dfrac{3}{4}", "\\frac{3}{4}", 1},
        {"\\tfrac34", "0.75", 1},     {"\\frac 34", "\\frac{6}{8}", 1}, {"\\frac9{19}", "9/19", 1},
        {"0.333333333", "\\frac13", 1}, {"0.3333333", "\\frac13", 0}, {"-\\frac{3}{8}", "\\frac{-3}{8}", 1},
        {"\\frac{4}{3}", "\\frac{3}{4}", 0}, {"0.333", "\\frac13", 0}, {"\\frac{3}{5}", "\\frac{3}{4}", 0},
        {"\\frac{3}{8}", "-\\frac{3}{8}", 0},
    };
    CHECK(cases);
}

static void test_repeating_decimals(void **state) {
    (void)state;
    static const Case cases[] = {
        {"0.\\overline{3}", "\\frac13", 1}, {"0.1\\overline{6}", "\\frac16", 1}, {"1.\\overline{09}", "\\frac{12}{11}", 1},
        {"-0.\\overline{3}", "-\\frac{1}{3}", 1},
        {"0.\\overline{3}", "0.3", 0}, {"0.\\overline{3}", "\\frac{3}{10}", 0}, {"0.1\\overline{6}", "\\frac{1}{6}+1", 0},
        {"1.\\overline{09}", "1.09", 0},
    };
    CHECK(cases);
}

static void test_mixed_numbers(void **state) {
    (void)state;
    static const Case cases[] = {
        {"2\\frac{1}{2}", "2.5", 1}, {"2 1/2", "\\frac52", 1}, {"137 \\frac{1}{2}", "137.5", 1},
        {"1\\frac{4}{5}", "\\frac95", 1}, {"-2\\frac12", "-2.5", 1},
        {"2\\frac{1}{2}", "1", 0},   {"2\\frac12", "2", 0},   {"1\\frac{4}{5}", "\\frac45", 0},
        /* an improper fraction after an integer is a product, not a mixed number */
        {"2\\frac{3}{2}", "3", 1},
    };
    CHECK(cases);
}

static void test_percentages(void **state) {
    (void)state;
    static const Case cases[] = {
        {"50\\%", "0.5", 1}, {"50\\%", "50", 1}, {"50", "50\\%", 1}, {"0.5", "50\\%", 1}, {"12.5%", "12.5", 1},
        {"50 percent", "50\\%", 1},
        {"5\\%", "50", 0}, {"50\\%", "5", 0}, {"0.05", "50\\%", 0},
    };
    CHECK(cases);
}

static void test_negatives_and_unicode_minus(void **state) {
    (void)state;
    static const Case cases[] = {
        {"-3", "-3", 1}, {"\xe2\x88\x92" "3", "-3", 1}, {"-\\sqrt{3}", "\xe2\x88\x92\\sqrt3", 1}, {"- 3", "-3", 1},
        {"3", "-3", 0},  {"-3", "3", 0}, {"\xe2\x88\x92" "3", "3", 0},
    };
    CHECK(cases);
}

static void test_scientific_notation(void **state) {
    (void)state;
    static const Case cases[] = {
        {"1.5\\times 10^{3}", "1500", 1}, {"2^10", "1024", 1}, {"1.5e3", "1500", 1}, {"1.5E+3", "1500", 1}, {"6.72\\cdot10^{-5}", ".0000672", 1},
        {"1.5\\times 10^{4}", "1500", 0}, {"1.5e-3", "1500", 0}, {"6.7\\cdot10^{-5}", ".0000672", 0},
    };
    CHECK(cases);
}

static void test_latex_spacing_and_sizing(void **state) {
    (void)state;
    static const Case cases[] = {
        {"\\left( 1, 2 \\right)", "(1,2)", 1}, {"\\Big(3\\Big)", "3", 1}, {"3\\,\\!\\;\\quad", "3", 1},
        {"\\displaystyle\\frac{1}{2}", "0.5", 1}, {"$\\frac12$", "\\frac{1}{2}", 1}, {"\\(5\\)", "5", 1},
        {"\\left[ 1,2 \\right]", "[1,2]", 1},
        {"\\left( 1, 3 \\right)", "(1,2)", 0}, {"\\Big(4\\Big)", "3", 0}, {"\\left[ 1,2 \\right)", "[1,2]", 0},
    };
    CHECK(cases);
}

static void test_text_units(void **state) {
    (void)state;
    static const Case cases[] = {
        {"5\\text{ cm}", "5", 1}, {"864 \\mbox{ inches}^2", "864", 1}, {"15\\mbox{ cm}^2", "15", 1},
        {"5.4 \\text{ cents}", "5.4", 1}, {"12 square feet", "12", 1}, {"5 cm", "5\\text{ cm}", 1},
        {"\\text{5}", "5", 1},
        {"6\\text{ cm}", "5", 0}, {"5\\text{ cm}", "5.4\\text{ cents}", 0}, {"864 \\mbox{ inches}^2", "865", 0},
    };
    CHECK(cases);
}

static void test_degrees(void **state) {
    (void)state;
    static const Case cases[] = {
        {"90^\\circ", "90", 1}, {"90^{\\circ}", "90^\\circ", 1}, {"90\xc2\xb0", "90", 1}, {"90 degrees", "90^\\circ", 1},
        {"\\frac{270}7\\text{ degrees}", "\\frac{270}{7}", 1},
        {"91^\\circ", "90", 0}, {"90^\\circ", "45^\\circ", 0},
    };
    CHECK(cases);
}

/* An angle in degrees (a degree mark or the unit) against one in radians (with \\pi) is
 * converted; without a mark on one side and \\pi on the other nothing is. */
static void test_degrees_against_radians(void **state) {
    (void)state;
    static const Case cases[] = {
        {"90^\\circ", "\\frac{\\pi}{2}", 1}, {"\\frac{\\pi}{2}", "90^\\circ", 1}, {"180\xc2\xb0", "\\pi", 1},
        {"45 degrees", "\\frac{\\pi}{4}", 1}, {"60\\text{ degrees}", "\\frac\\pi3", 1},
        {"30^\\circ, 150^\\circ", "\\frac{\\pi}{6}, \\frac{5\\pi}{6}", 1}, {"x = 120^\\circ", "\\frac{2\\pi}{3}", 1},
        /* near misses */
        {"90^\\circ", "\\frac{\\pi}{3}", 0}, {"90", "\\frac{\\pi}{2}", 0}, {"\\frac{\\pi}{2}", "90", 0},
        {"90^\\circ", "1.5708", 0}, {"\\frac{\\pi}{2}^\\circ", "90", 0}, {"30^\\circ, 150^\\circ", "\\frac{\\pi}{6}, \\frac{\\pi}{3}", 0},
    };
    CHECK(cases);
}

/* Constant expressions that have a value: logarithms with numeric arguments and bases, \\ln
 * of powers of e, e as Euler's number when nothing else on either side is a variable. */
static void test_logarithms_and_e(void **state) {
    (void)state;
    static const Case cases[] = {
        {"\\log_2 8", "3", 1},          {"\\log_{2}(8)", "3", 1},        {"\\log_28", "3", 1},
        {"\\log_{10} 1000", "3", 1},    {"\\log 1000", "3", 1},          {"\\log_3 \\frac{1}{9}", "-2", 1},
        {"\\log_{4} 2", "\\frac12", 1}, {"2\\log_2 3", "\\log_2 9", 1},  {"\\log_e 5", "\\ln 5", 1},
        {"\\ln e^3", "3", 1},           {"\\ln(e^2)", "2", 1},           {"\\ln e", "1", 1},
        {"e^2", "7.389056099", 1},      {"2e", "5.436563657", 1},        {"e^{\\ln 4}", "4", 1},
        {"\\frac{e^2 - 1}{2}", "3.194528049", 1}, {"3\\pi", "9.424777961", 1}, {"\\log_2 x", "\\frac{\\ln x}{\\ln 2}", 1},
        /* near misses */
        {"\\log_2 8", "4", 0},          {"\\log_3 8", "2", 0},           {"\\log_{2} 16", "3", 0},
        {"\\log 100", "10", 0},         {"\\ln e^3", "2", 0},            {"e^2", "7.39", 0},
        {"e", "2.718", 0},              {"3\\pi", "9.42", 0},            {"e^x", "2.718281828^x", 0},
        {"x e", "2.718281828 x", 0},    {"\\log_2 x", "\\log_3 x", 0},    {"\\ln e^2", "e^2", 0},
    };
    CHECK(cases);
}

static void test_numbers_in_quotes(void **state) {
    (void)state;
    static const Case cases[] = {
        {"\"5\"", "5", 1}, {"'5'", "5", 1}, {"``12''", "12", 1}, {"\xe2\x80\x9c" "3/4" "\xe2\x80\x9d", "0.75", 1},
        {"\\text{\"7\"}", "7", 1}, {"5", "\"5\"", 1},
        {"\"6\"", "5", 0}, {"'5", "5", 0}, {"5'", "5", 0}, {"\"5", "5", 0}, {"\"5\"", "55", 0},
    };
    CHECK(cases);
}

static void test_compound_units(void **state) {
    (void)state;
    static const Case cases[] = {
        {"5\\text{ km/h}", "5", 1},       {"5 \\text{m/s}^2", "5", 1},        {"5\\text{ m/s^2}", "5", 1},
        {"9.8\\text{ m/s}^{2}", "9.8", 1}, {"5\\text{km}/\\text{h}", "5", 1},  {"5\\,\\mathrm{m}/\\mathrm{s}^2", "5", 1},
        {"12\\text{ dollars per hour}", "12", 1}, {"3\\text{ per unit}", "3", 1}, {"40\\text{ miles per gallon}", "40", 1},
        {"2.5\\text{ kg/m}^3", "2.5", 1}, {"7\\text{ m}^2", "7", 1}, {"5\\text{ m}", "5", 1},
        /* near misses: the number still counts, and a letter alone is no unit */
        {"5\\text{ km/h}", "6", 0},       {"5\\text{ m/s}^2", "25", 0},       {"5\\text{m}", "5", 0},
        {"12\\text{ dollars per hour}", "1.2", 0}, {"5\\text{km}/x", "5", 0}, {"5\\text{ kg}", "5\\text{ km/h}5", 0},
    };
    CHECK(cases);
}

static void test_real_line_and_intervals(void **state) {
    (void)state;
    static const Case cases[] = {
        {"\\mathbb{R}", "(-\\infty,\\infty)", 1},     {"(-\\infty, \\infty)", "\\mathbb{R}", 1},
        {"\\mathbb R", "(-\\infty,\\infty)", 1},      {"\xe2\x84\x9d", "(-\\infty,\\infty)", 1},
        {"\\mathbb{R}^+", "(0,\\infty)", 1},         {"\\mathbb{R}^{+}", "(0,\\infty)", 1},
        {"\\mathbb{R}_{>0}", "(0, \\infty)", 1},     {"\\mathbb{R}_{\\ge 0}", "[0,\\infty)", 1},
        {"\\mathbb{R}^-", "(-\\infty,0)", 1},        {"\\mathbb{R}_{\\leq 0}", "(-\\infty,0]", 1},
        {"x \\in \\mathbb{R}", "(-\\infty,\\infty)", 1}, {"\\mathbb{R}", "\\mathbb{R}", 1},
        /* near misses */
        {"\\mathbb{R}", "(0,\\infty)", 0},           {"\\mathbb{R}^+", "[0,\\infty)", 0},
        {"\\mathbb{R}", "(-\\infty,0)\\cup(0,\\infty)", 0}, {"\\mathbb{Z}", "(-\\infty,\\infty)", 0},
        {"\\mathbb{R}^2", "(-\\infty,\\infty)", 0}, {"\\mathbb{R}_{\\ge 0}", "(0,\\infty)", 0},
    };
    CHECK(cases);
}

static void test_equations_against_tuples(void **state) {
    (void)state;
    static const Case cases[] = {
        {"x = 2, y = 3", "(2, 3)", 1}, {"(2, 3)", "x = 2, y = 3", 1}, {"x=2,y=3,z=-1", "(2,3,-1)", 1},
        {"x = \\frac{1}{2}, y = 3", "(0.5, 3)", 1}, {"(x, y) = (2, 3)", "(2, 3)", 1}, {"x = 2 and y = 3", "(2,3)", 1},
        /* near misses: another order, a repeated variable, other brackets, another length */
        {"x = 3, y = 2", "(2, 3)", 0}, {"x = 2, x = 3", "(2, 3)", 0}, {"x = 2, y = 3", "[2, 3]", 0},
        {"x = 2, y = 3, z = 4", "(2, 3)", 0}, {"x + y = 2, y = 3", "(2, 3)", 0}, {"x = 2, y = 4", "(2, 3)", 0},
    };
    CHECK(cases);
}

static void test_floor_and_ceiling(void **state) {
    (void)state;
    static const Case cases[] = {
        {"\\lfloor 3.7 \\rfloor", "3", 1}, {"\\lceil 3.2\\rceil", "4", 1}, {"\\left\\lfloor \\frac{7}{2} \\right\\rfloor", "3", 1},
        {"\\lfloor -2.5 \\rfloor", "-3", 1}, {"\\lceil 5 \\rceil", "5", 1}, {"\xe2\x8c\x8a" "9.9" "\xe2\x8c\x8b", "9", 1},
        {"2\\lfloor \\sqrt{10} \\rfloor", "6", 1},
        {"\\lfloor 3.7 \\rfloor", "4", 0}, {"\\lceil 3.2\\rceil", "3", 0}, {"\\lfloor -2.5 \\rfloor", "-2", 0},
        {"\\lfloor x \\rfloor", "x", 0}, {"\\lceil x \\rceil", "x + 1", 0},
    };
    CHECK(cases);
}

static void test_matrices_and_vectors(void **state) {
    (void)state;
    static const Case cases[] = {
        {"\\begin{bmatrix}1&2\\\\3&4\\end{bmatrix}", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", 1},
        {"\\begin{array}{cc}1&2\\\\3&4\\end{array}", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", 1},
        {"\\left(\\begin{array}{cc}1&2\\\\3&4\\end{array}\\right)", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", 1},
        {"\\left[\\begin{matrix}1&2\\\\3&4\\end{matrix}\\right]", "\\begin{bmatrix}1&2\\\\3&4\\end{bmatrix}", 1},
        {"\\left(\\begin{array}{c}1\\\\2\\end{array}\\right)", "(1,2)", 1},
        {"\\begin{pmatrix}\\frac12\\\\-3\\end{pmatrix}", "\\begin{pmatrix}0.5\\\\-3\\end{pmatrix}", 1},
        {"\\begin{pmatrix}1 & 2\\end{pmatrix}", "\\langle 1, 2\\rangle", 1},
        /* near misses: transposed, another entry, a determinant is not its matrix, shapes */
        {"\\begin{pmatrix}1&3\\\\2&4\\end{pmatrix}", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", 0},
        {"\\begin{array}{cc}1&2\\\\3&5\\end{array}", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", 0},
        {"\\begin{vmatrix}1&2\\\\3&4\\end{vmatrix}", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", 0},
        {"\\begin{pmatrix}1&2&3&4\\end{pmatrix}", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", 0},
        {"\\left(\\begin{array}{c}2\\\\1\\end{array}\\right)", "(1,2)", 0},
    };
    CHECK(cases);
}

static void test_dollars(void **state) {
    (void)state;
    static const Case cases[] = {
        {"\\$18.90", "18.9", 1}, {"18.90", "\\$18.90", 1}, {"\\$32,\\!348", "32348", 1}, {"32348 dollars", "\\$32,\\!348", 1},
        {"\\$18.91", "18.9", 0}, {"\\$32,\\!349", "32348", 0},
    };
    CHECK(cases);
}

static void test_radicals(void **state) {
    (void)state;
    static const Case cases[] = {
        {"2\\sqrt{3}", "\\sqrt{12}", 1}, {"\\sqrt{12}", "2\\sqrt3", 1}, {"11\\sqrt2", "11 \\sqrt{2}", 1},
        {"\\frac{\\sqrt{3}}{3}", "\\frac{1}{\\sqrt3}", 1}, {"\\sqrt[3]{8}", "2", 1}, {"\\sqrt[3]{-8}", "-2", 1},
        {"3\\sqrt{13}", "\\sqrt{117}", 1}, {"\xe2\x88\x9a" "2", "\\sqrt{2}", 1},
        {"2\\sqrt{3}", "\\sqrt{13}", 0}, {"3\\sqrt{2}", "2\\sqrt{3}", 0}, {"\\sqrt[3]{8}", "\\sqrt{8}", 0},
        {"\\frac{\\sqrt{3}}{2}", "\\frac{\\sqrt{3}}{3}", 0},
    };
    CHECK(cases);
}

static void test_pi(void **state) {
    (void)state;
    static const Case cases[] = {
        {"12\\pi", "12 \\pi", 1}, {"\\pi \\cdot 12", "12\\pi", 1}, {"\\frac{20000}{\\pi}", "20000/\\pi", 1},
        {"3.1415926536", "\\pi", 1}, {"\xcf\x80", "\\pi", 1}, {"18+2\\pi", "2\\pi + 18", 1},
        {"12", "12\\pi", 0}, {"3.14", "\\pi", 0}, {"13\\pi", "12\\pi", 0}, {"\\pi", "\\frac{\\pi}{2}", 0},
    };
    CHECK(cases);
}

static void test_algebraic_expressions(void **state) {
    (void)state;
    static const Case cases[] = {
        {"(x+1)^2", "x^2+2x+1", 1},       {"x^2 + 2x + 1", "(1+x)(x+1)", 1}, {"6r^2-4r-24", "2(3r^2-2r-12)", 1},
        {"\\frac{11+9a}{20}", "\\frac{9a+11}{20}", 1}, {"(a+5)(b+2)", "ab+2a+5b+10", 1}, {"p - q", "-q+p", 1},
        {"x^5 - x^4 + x^3 - x^2 + x - 1", "(x-1)(x^4+x^2+1)", 1}, {"2x \\times 3", "6x", 1},
        {"\\cot x", "\\frac{\\cos x}{\\sin x}", 1}, {"-2 + 7i", "7i-2", 1}, {"x_1 + x_2", "x_{2}+x_{1}", 1},
        {"\\frac{x}{2}", "0.5x", 1}, {"e^{2x}", "(e^x)^2", 1},
        {"(x+1)^2", "x^2+2x", 0},  {"x^2+2x+1", "x^2+2x-1", 0}, {"p + q", "p - q", 0}, {"x", "y", 0},
        {"ab+2a+5b+10", "(a+5)(b+3)", 0}, {"x_1", "x_2", 0}, {"2x", "x^2", 0}, {"x", "5", 0},
        /* negative sample points tell these apart */
        {"x", "|x|", 0}, {"\\sqrt{x^2}", "x", 0}, {"\\sqrt{x^2}", "|x|", 1}, {"x^{1/3}", "\\sqrt[3]{x}", 1},
        {"x^{2/3}", "\\sqrt[3]{x^2}", 1}, {"\\sqrt{x}", "x^{1/2}", 1},
    };
    CHECK(cases);
}

static void test_equations(void **state) {
    (void)state;
    static const Case cases[] = {
        {"x = 5", "5", 1}, {"5", "x=5", 1}, {"x=5", "x = 5", 1}, {"y = 2x + 3", "y=3+2x", 1}, {"y = -2x", "y=-2x", 1},
        {"5x - 7y + 11z + 4 = 0", "-10x+14y-22z-8=0", 1}, {"2x+3", "y = 2x + 3", 1},
        {"x = 6", "5", 0}, {"y = 5", "x = 5", 0}, {"y = 2x + 3", "x=2y+3", 0}, {"y=2x+4", "y = 2x + 3", 0},
        {"5x - 7y + 11z + 5 = 0", "5x - 7y + 11z + 4 = 0", 0},
        /* an equation's sides without variables must all be the answer: no hedging */
        {"2 + 3 = 5", "5", 1}, {"x = 2 + 3 = 5", "5", 1}, {"6 = 5", "5", 0}, {"1 = 2 = 3 = 4 = 5", "5", 0},
        {"x = 6 = 5", "5", 0}, {"x + y = 5", "5", 0}, {"5x - 7y + 11z + 4 = 0", "0", 0}, {"0", "5x - 7y + 11z + 4 = 0", 0},
        {"2x + 3", "2x + 3 = y", 0}, {"p(x) = x^2 + 1", "x^2+1", 1}, {"x^2+1", "p(x) = x^2 + 1", 1},
        {"f(2) = 7", "7", 1}, {"f(2) = 7", "8", 0}, {"f(x) = 2x", "g(x) = 2x", 0}, {"f(x)g(x) = 5", "5", 0},
    };
    CHECK(cases);
}

static void test_intervals(void **state) {
    (void)state;
    static const Case cases[] = {
        {"[1, 2)", "[1,2)", 1}, {"(-\\infty, 0]", "(-\\infty,0]", 1}, {"x \\in [-2,7]", "[-2,7]", 1},
        {"[-2,7]", "x \\in [-2,7]", 1}, {"(3,\\infty)\\cup(-\\infty,2)", "(-\\infty, 2) \\cup (3, \\infty)", 1},
        {"\\left(\\frac{3}{5},\\frac{8}{3}\\right]", "(0.6, 8/3]", 1}, {"(5,\xe2\x88\x9e)", "(5,\\infty)", 1},
        {"[-\\infty, 0]", "(-\\infty, 0]", 1}, {"(2,\\infty]", "(2, \\infty)", 1}, {"[-\\infty, \\infty]", "(-\\infty,\\infty)", 1},
        {"(1, 2)", "[1,2)", 0}, {"[-\\infty, 0)", "(-\\infty, 0]", 0}, {"[2,\\infty)", "(2, \\infty)", 0}, {"[1,2]", "[1,2)", 0}, {"(-\\infty, 0)", "(-\\infty, 0]", 0},
        {"(\\infty, 0]", "(-\\infty,0]", 0}, {"(-\\infty, 2) \\cup (4, \\infty)", "(-\\infty, 2) \\cup (3, \\infty)", 0},
        {"(-\\infty, 2)", "(-\\infty, 2) \\cup (3, \\infty)", 0},
    };
    CHECK(cases);
}

static void test_inequalities_against_intervals(void **state) {
    (void)state;
    static const Case cases[] = {
        {"x > 3", "(3, \\infty)", 1}, {"(3,\\infty)", "x>3", 1}, {"1 < x \\le 3", "(1,3]", 1}, {"3 > x", "(-\\infty, 3)", 1},
        {"x \\le 5", "(-\\infty, 5]", 1}, {"x<3", "3>x", 1}, {"-2 \\le x \\le 7", "x \\in [-2,7]", 1},
        {"x \\ge 3", "(3, \\infty)", 0}, {"1 < x < 3", "(1,3]", 0}, {"x < 3", "(3, \\infty)", 0}, {"x > 4", "(3, \\infty)", 0},
        {"x \\le 3", "x < 3", 0}, {"x<3", "x>3", 0},
    };
    CHECK(cases);
}

static void test_answer_in_a_sentence(void **state) {
    (void)state;
    static const Case cases[] = {
        {"18 apples", "18", 1}, {"The answer is 5", "5", 1}, {"The answer is \\frac{1}{2}.", "0.5", 1},
        {"The final answer is: x = 3", "3", 1},
        {"The answer is 5", "6", 0}, {"18 apples", "19", 0}, {"five", "5", 0}, {"no solution", "0", 0},
    };
    CHECK(cases);
}

static void test_tuples_are_ordered(void **state) {
    (void)state;
    static const Case cases[] = {
        {"(1,2)", "(1, 2)", 1}, {"\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\pi/2)", 1},
        {"(1,-16,-4,43)", "(1, -16, -4, 43)", 1}, {"\\langle 1, 2\\rangle", "(1,2)", 1},
        {"\\begin{pmatrix} -1/3 \\\\ 2/3 \\\\ 5/3 \\end{pmatrix}", "\\begin{pmatrix} -\\frac13 \\\\ \\frac23 \\\\ \\frac53 \\end{pmatrix}", 1},
        {"(-7, 16, 5)", "\\begin{pmatrix} -7 \\\\ 16 \\\\ 5 \\end{pmatrix}", 1},
        {"\\begin{pmatrix} -1 & 0 \\\\ 0 & -1 \\end{pmatrix}", "\\begin{bmatrix} -1 & 0 \\\\ 0 & -1 \\end{bmatrix}", 1},
        {"(2,1)", "(1,2)", 0}, {"(1,2,3)", "(1,2)", 0}, {"(1,-16,-4,42)", "(1, -16, -4, 43)", 0},
        {"\\begin{pmatrix} 0 & -1 \\\\ -1 & 0 \\end{pmatrix}", "\\begin{pmatrix} -1 & 0 \\\\ 0 & -1 \\end{pmatrix}", 0},
        {"(16, -7, 5)", "\\begin{pmatrix} -7 \\\\ 16 \\\\ 5 \\end{pmatrix}", 0},
    };
    CHECK(cases);
}

static void test_sets_are_unordered(void **state) {
    (void)state;
    static const Case cases[] = {
        {"\\{1,2\\}", "\\{2,1\\}", 1}, {"3, 5, 7", "7,5,3", 1}, {"\\{3, 5, 7\\}", "3, 5, 7", 1},
        {"1 \\pm \\sqrt{19}", "1+\\sqrt{19}, 1-\\sqrt{19}", 1}, {"3 \\pm 2 \\sqrt{2}", "3-2\\sqrt2, 3+2\\sqrt2", 1},
        {"\\{1\\pm\\sqrt{5},-2\\}", "\\{-2, 1+\\sqrt5, 1-\\sqrt5\\}", 1}, {"x = 1, x = -2", "-2, 1", 1},
        {"1 and -2", "-2, 1", 1}, {"\\{5\\}", "5", 1}, {"\\emptyset", "\\{\\}", 1}, {"\\varnothing", "\\emptyset", 1},
        {"\\emptyset", "\\{0\\}", 0}, {"\\emptyset", "0", 0},
        {"\\{1,2\\}", "\\{1,3\\}", 0}, {"3, 5", "3, 5, 7", 0}, {"3, 5, 7, 9", "3, 5, 7", 0}, {"1 + \\sqrt{19}", "1 \\pm \\sqrt{19}", 0},
        {"1, 1", "1, 2", 0}, {"(1, 2)", "1, 2", 0},
    };
    CHECK(cases);
}

static void test_multiple_choice_letters(void **state) {
    (void)state;
    static const Case cases[] = {
        {"(B)", "B", 1}, {"B", "\\text{(B)}", 1}, {"\\text{(B)}", "(B)", 1}, {"(B) 12", "B", 1}, {"B.", "B", 1},
        {"\\textbf{(E)}", "\\text{(E)}", 1},
        {"(C)", "B", 0}, {"\\text{(C)}", "\\text{(B)}", 0}, {"12", "B", 0}, {"b", "B", 0},
        /* naming several choices is no answer */
        {"(B) or (C)", "B", 0}, {"(A) (B) (C) (D) (E)", "A", 0}, {"(B), C", "B", 0}, {"B, C", "B", 0},
        {"(B) 12 (C) 13", "B", 0},
    };
    CHECK(cases);
}

static void test_text_answers(void **state) {
    (void)state;
    static const Case cases[] = {
        {"Evelyn", "\\text{Evelyn}", 1}, {"\\text{east}", "\\text{East}", 1}, {"even", "\\text{even}", 1},
        {"\\text{Navin}", "\\text{Evelyn}", 0}, {"west", "\\text{east}", 0}, {"odd", "\\text{even}", 0},
    };
    CHECK(cases);
}

static void test_other_numbers_bases_factorials(void **state) {
    (void)state;
    static const Case cases[] = {
        {"2516_8", "2516_8", 1}, {"4210_{5}", "4210_5", 1}, {"5!", "120", 1}, {"\\binom{5}{2}", "10", 1},
        {"|{-3}|", "3", 1},
        {"2516", "2516_8", 1}, {"2516_8", "2516", 1},
        {"2517_8", "2516_8", 0}, {"2516_9", "2516_8", 0}, {"4210_{3}", "4210_{5}", 0}, {"4!", "120", 0}, {"\\binom{5}{3}", "5", 0},
    };
    CHECK(cases);
}

/* Wrong answers that are close to the right one in value or form must all score 0. */
static void test_near_misses_are_rejected(void **state) {
    (void)state;
    static const Case cases[] = {
        {"\\frac{14}{3}", "\\frac{14}{3}", 1},
        {"4.67", "\\frac{14}{3}", 0}, {"4.6667", "\\frac{14}{3}", 0}, {"\\frac{13}{3}", "\\frac{14}{3}", 0},
        {"\\frac{14}{5}", "\\frac{14}{3}", 0}, {"14/3 + 1", "\\frac{14}{3}", 0}, {"-\\frac{14}{3}", "\\frac{14}{3}", 0},
        {"\\frac{3}{14}", "\\frac{14}{3}", 0}, {"27649", "27648", 0}, {"27647", "27648", 0}, {"2764.8", "27648", 0},
        {"276480", "27648", 0}, {"27,648.5", "27648", 0}, {"\\sqrt{51}", "\\sqrt{53}", 0}, {"\\sqrt{53}", "53", 0},
        {"7.28", "\\sqrt{53}", 0}, {"2\\sqrt{5}", "\\sqrt{5}", 0}, {"5\\sqrt{2}", "2\\sqrt{5}", 0},
        {"1+274i", "1+247i", 0}, {"1-274i", "1+274i", 0}, {"(15,-28)", "(15,-29)", 0}, {"(-29,15)", "(15,-29)", 0},
        {"-13x+2", "-13x+3", 0}, {"-13x-3", "-13x+3", 0}, {"13x+3", "-13x+3", 0}, {"x^3+3x+6", "x^3+3x-6", 0},
        {"x^3+3x^2-6", "x^3+3x-6", 0}, {"8n^2+4n", "8n^2 + 4n + 1", 0}, {"(2,12) \\cup (12,103)", "(2,12) \\cup (12,102)", 0},
        {"[2,12) \\cup (12,102)", "(2,12) \\cup (12,102)", 0}, {"\\frac{\\pi}{3}", "-\\frac{\\pi}{6}", 0},
        {"\\frac{\\pi}{6}", "-\\frac{\\pi}{6}", 0}, {"30^\\circ", "-\\frac{\\pi}{6}", 0}, {"0.35", ".35625", 0},
        {"0.3562", ".35625", 0}, {"106", "106.5", 0}, {"58,501", "58,500", 0}, {"58.5", "58,500", 0},
        {"5.5\\%", "5\\%", 0}, {"\\frac{17}{51}", "\\dfrac{17}{50}", 0}, {"\\text{(C)}", "\\text{(B)}", 0},
        {"1 \\pm \\sqrt{18}", "1 \\pm \\sqrt{19}", 0}, {"11\\sqrt5 + 12", "11 \\sqrt{5} + 11", 0},
        {"y = 2x + 2", "y = 2x + 3", 0}, {"e", "\\text{east}", 0}, {"", "5", 0},
        /* cut off or malformed: never right */
        {"\\frac{1}{2", "\\frac{1}{2}", 0}, {"\\frac3}{2}", "\\frac{3}{2}", 0}, {"2\\sqrt{5", "2\\sqrt{5}", 0},
    };
    CHECK(cases);
}

/* A reward that accepts several candidate answers at once teaches the model to hedge. */
static void test_hedged_answers_are_rejected(void **state) {
    (void)state;
    static const Case cases[] = {
        {"5, 6", "5", 0},         {"5 or 6", "5", 0},            {"\\{5, 6\\}", "5", 0},   {"5 \\pm 1", "5", 0},
        {"x = 5, x = 6", "5", 0}, {"x \\in \\{5, 6\\}", "5", 0}, {"6 = 5", "5", 0},       {"(B) or (C)", "B", 0},
        {"(1,2) \\cup (3,4)", "(1,2)", 0}, {"[1,2], [3,4]", "[1,2]", 0}, {"1, 2, 3", "1, 2", 0},
        {"5 or maybe 6", "5", 0}, {"x", "5", 0},               {"5x", "5", 0},
    };
    CHECK(cases);
    double score = 1;
    assert_int_equal(aha_math_score("\\boxed{5} or \\boxed{6}", "5", AHA_MATH_EXTRACT_AUTO, &score, NULL, 0), 0);
    assert_true(score == 0.0);
    assert_int_equal(aha_math_score("<answer>5</answer><answer>6</answer>", "5", AHA_MATH_EXTRACT_AUTO, &score, NULL, 0), 0);
    assert_true(score == 0.0);
}

static void test_unparseable_gold_is_no_score(void **state) {
    (void)state;
    static const Case cases[] = {
        {"5", "", -1}, {"5", "   ", -1}, {"5", "\\frac{1}{2", -1}, {"5", "}5{", -1}, {"5", "$$", -1},
    };
    CHECK(cases);
    assert_int_equal(aha_math_equal("5", NULL), -1);
    assert_int_equal(aha_math_equal(NULL, "5"), 0);
}

static void test_extract_boxed_and_answer_tag(void **state) {
    (void)state;
    struct {
        const char *completion;
        AhaMathExtract mode;
        const char *expected; /* NULL: no answer */
    } cases[] = {
        {"so \\boxed{5}.", AHA_MATH_EXTRACT_AUTO, "5"},
        {"\\boxed{1} then \\boxed{\\frac{1}{2}}", AHA_MATH_EXTRACT_AUTO, "\\frac{1}{2}"},
        {"\\boxed{\\{1, \\{2\\}\\}}", AHA_MATH_EXTRACT_AUTO, "\\{1, \\{2\\}\\}"},
        {"\\fbox{7}", AHA_MATH_EXTRACT_AUTO, "7"},
        {"\\boxed 7 is it", AHA_MATH_EXTRACT_AUTO, "7"},
        {"<think>2+2</think> <answer> 4 </answer>", AHA_MATH_EXTRACT_AUTO, "4"},
        {"<answer>so \\boxed{4}</answer>", AHA_MATH_EXTRACT_AUTO, "4"},
        {"<answer>1</answer><answer>2</answer>", AHA_MATH_EXTRACT_AUTO, "2"},
        {"<think>\\boxed{3}</think><answer>4</answer>", AHA_MATH_EXTRACT_AUTO, "4"},
        {"<answer>4</answer> wait, \\boxed{5}", AHA_MATH_EXTRACT_AUTO, "5"},
        {"<answer>4</answer> \\boxed{5}", AHA_MATH_EXTRACT_BOXED, "5"},
        {"<answer>4</answer>", AHA_MATH_EXTRACT_BOXED, NULL},
        {"<answer>4</answer> \\boxed{5}", AHA_MATH_EXTRACT_ANSWER_TAG, "4"},
        {"\\boxed{5}", AHA_MATH_EXTRACT_ANSWER_TAG, NULL},
        {"\\boxed{5", AHA_MATH_EXTRACT_AUTO, NULL},
        {"<answer>5", AHA_MATH_EXTRACT_AUTO, NULL},
        {"the answer is 5", AHA_MATH_EXTRACT_AUTO, NULL},
        {"\\boxed{}", AHA_MATH_EXTRACT_AUTO, ""},
        {"\\boxedx{5}", AHA_MATH_EXTRACT_AUTO, NULL},
        {"", AHA_MATH_EXTRACT_AUTO, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = aha_math_extract(cases[i].completion, cases[i].mode);
        if (!cases[i].expected) {
            if (got) print_error("case %zu [%s]: expected none, got [%s]\n", i, cases[i].completion, got);
            assert_null(got);
        } else {
            if (!got) print_error("case %zu [%s]: expected [%s], got none\n", i, cases[i].completion, cases[i].expected);
            assert_non_null(got);
            assert_string_equal(got, cases[i].expected);
        }
        free(got);
    }
    assert_null(aha_math_extract(NULL, AHA_MATH_EXTRACT_AUTO));
}

static void test_gold_forms(void **state) {
    (void)state;
    struct {
        const char *gold, *expected;
    } cases[] = {
        {" 42 ", "42"},
        {"Natalia sold 48/2 = <<48/2=24>>24 clips.\n#### 72", "72"},
        {"so 1,000 + 80\n#### 1,080\n", "1,080"},
        {"#### -3", "-3"},
        {"We get $\\boxed{\\frac{14}{3}}$.", "\\frac{14}{3}"},
        {"\\frac{14}{3}", "\\frac{14}{3}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = aha_math_gold(cases[i].gold);
        assert_non_null(got);
        assert_string_equal(got, cases[i].expected);
        free(got);
    }
    assert_null(aha_math_gold(""));
    assert_null(aha_math_gold("#### "));
    assert_null(aha_math_gold(NULL));
}

static void test_score_and_reason(void **state) {
    (void)state;
    double score = -1;
    char reason[128];
    assert_int_equal(aha_math_score("so \\boxed{3/4}", "0.75", AHA_MATH_EXTRACT_AUTO, &score, reason, sizeof reason), 0);
    assert_true(score == 1.0);
    assert_string_equal(reason, "equal: 3/4 = 0.75");

    assert_int_equal(aha_math_score("\\boxed{12}", "#### 13", AHA_MATH_EXTRACT_AUTO, &score, reason, sizeof reason), 0);
    assert_true(score == 0.0);
    assert_string_equal(reason, "not equal: 12 vs 13");

    assert_int_equal(aha_math_score("I think 13", "13", AHA_MATH_EXTRACT_AUTO, &score, reason, sizeof reason), 0);
    assert_true(score == 0.0);
    assert_string_equal(reason, "no \\boxed{} or <answer> found");

    assert_int_equal(aha_math_score("<answer>13</answer>", "13", AHA_MATH_EXTRACT_BOXED, &score, reason, sizeof reason), 0);
    assert_true(score == 0.0);
    assert_string_equal(reason, "no \\boxed{} found");

    assert_int_equal(aha_math_score("<think>x</think><answer>13</answer>", "The answer is $\\boxed{13}$.",
                                    AHA_MATH_EXTRACT_ANSWER_TAG, &score, reason, sizeof reason),
                     0);
    assert_true(score == 1.0);

    /* no score: the gold cannot be parsed */
    score = -1;
    assert_int_equal(aha_math_score("\\boxed{5}", "", AHA_MATH_EXTRACT_AUTO, &score, reason, sizeof reason), 1);
    assert_true(score == 0.0);
    assert_non_null(strstr(reason, "gold"));
    assert_int_equal(aha_math_score("\\boxed{5}", "\\frac{1}{2", AHA_MATH_EXTRACT_AUTO, &score, reason, sizeof reason), 1);
    assert_non_null(strstr(reason, "unbalanced"));

    /* a tiny reason buffer is cut, never overrun; no buffer at all is fine */
    char tiny[6];
    assert_int_equal(aha_math_score("\\boxed{3/4}", "0.75", AHA_MATH_EXTRACT_AUTO, &score, tiny, sizeof tiny), 0);
    assert_string_equal(tiny, "equal");
    assert_int_equal(aha_math_score("\\boxed{3/4}", "0.75", AHA_MATH_EXTRACT_AUTO, &score, NULL, 0), 0);
    assert_true(score == 1.0);
}

static void test_bad_arguments_are_clear_errors(void **state) {
    (void)state;
    double score;
    char reason[64];
    assert_int_equal(aha_math_score(NULL, "5", AHA_MATH_EXTRACT_AUTO, &score, reason, sizeof reason), -1);
    assert_non_null(strstr(aha_error_message(), "must not be NULL"));
    assert_int_equal(aha_math_score("\\boxed{5}", "5", (AhaMathExtract)7, &score, reason, sizeof reason), -1);
    assert_non_null(strstr(aha_error_message(), "unknown extraction mode 7"));
}

/* Whatever a model writes, the checker answers 0 or 1 and stays within its memory. */
static void test_hostile_answers(void **state) {
    (void)state;
    size_t n = 200000;
    char *deep = malloc(2 * n + 1);
    assert_non_null(deep);
    for (size_t i = 0; i < n; i++) deep[i] = '(', deep[n + i] = ')';
    deep[2 * n] = '\0';
    assert_int_equal(aha_math_equal(deep, "5"), 0);
    assert_int_equal(aha_math_equal(deep, deep), 1);
    for (size_t i = 0; i < 2 * n; i++) deep[i] = i % 2 ? '+' : '1';
    assert_int_equal(aha_math_equal(deep, "5"), 0);
    memset(deep, '{', n);
    memset(deep + n, '}', n);
    assert_int_equal(aha_math_equal(deep, "5"), 0);
    for (size_t i = 0; i < 2 * n; i++) deep[i] = "\\frac"[i % 5];
    assert_int_equal(aha_math_equal(deep, "5"), 0);
    free(deep);
    /* Many unclosed or repeated constructs: each must cost linear time, not quadratic. */
    static const char *const repeated[] = {"\\boxed{", "\\begin{", "x_{", "\\hspace{", "\\text{", "\\fbox{1}{",
                                           "<answer>", "\\left(", "\\frac{", "1,"};
    size_t big = 1u << 20;
    char *text = malloc(big + 16);
    assert_non_null(text);
    for (size_t r = 0; r < sizeof repeated / sizeof repeated[0]; r++) {
        size_t len = strlen(repeated[r]), used = 0;
        while (used + len < big) memcpy(text + used, repeated[r], len), used += len;
        text[used] = '\0';
        double score = 1;
        assert_int_equal(aha_math_score(text, "5", AHA_MATH_EXTRACT_AUTO, &score, NULL, 0), 0);
        assert_true(score == 0.0);
        assert_int_equal(aha_math_equal(text, "5"), 0);
        assert_true(aha_math_equal(text, text) >= -1); /* -1: a gold with unclosed braces */
    }
    free(text);
    static const char *const junk[] = {
        "\\", "^", "_", "\\frac", "\\sqrt", "\\begin{pmatrix}", "\\end{pmatrix}", "((", "))", "\\left", "\\text{",
        "1/0", "0/0", "\\infty-\\infty", "10^{10000}", "(-8)^{1/3}", "\xff\xfe", "\xe2\x88", "1,", ",", "=", "x=", "\\{",
        "\\}", "[1,", "\\binom{1000000}{500000}", "171!", "\\sqrt[0]{2}", "&", "\\\\", "\\pm", "\\cup", "\\in",
        "\\begin{array}{c}1\\end{array}", "|", "1%%", "\\boxed{", "x_", "x_{", "204_",
    };
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        int r = aha_math_equal(junk[i], "5");
        if (r != 0) print_error("junk [%s] against 5: %d\n", junk[i], r);
        assert_int_equal(r, 0);
        r = aha_math_equal(junk[i], junk[i]);
        if (r == -2) print_error("junk [%s] against itself: %d\n", junk[i], r);
        assert_true(r >= -1);
    }
}

/* The reward runs in parallel workers: concurrent checks must not disturb each other. */
static const Case concurrent_cases[] = {
    {"\\frac{3}{4}", "0.75", 1}, {"(x+1)^2", "x^2+2x+1", 1}, {"\\{1,2\\}", "\\{2,1\\}", 1}, {"(B)", "B", 1},
    {"\xef\xbc\x91\xef\xbc\x92", "12", 1}, {"x > 3", "(3, \\infty)", 1}, {"The answer is 5", "5", 1},
    {"4.67", "\\frac{14}{3}", 0}, {"(1, 2)", "[1,2)", 0}, {"6 = 5", "5", 0}, {"x", "|x|", 0}, {"\\frac{1}{2", "0.5", 0},
};

static void *check_concurrently(void *arg) {
    int *failures = arg;
    for (int round = 0; round < 200; round++)
        for (size_t i = 0; i < sizeof concurrent_cases / sizeof concurrent_cases[0]; i++) {
            char reason[96];
            double score = -1;
            char completion[128];
            snprintf(completion, sizeof completion, "<answer>\\boxed{%s}</answer>", concurrent_cases[i].answer);
            if (aha_math_score(completion, concurrent_cases[i].gold, AHA_MATH_EXTRACT_AUTO, &score, reason, sizeof reason) != 0 ||
                score != (double)concurrent_cases[i].expected)
                (*failures)++;
        }
    return NULL;
}

static void test_concurrent_checks_agree(void **state) {
    (void)state;
    pthread_t threads[4];
    int failures[4] = {0};
    for (int t = 0; t < 4; t++) assert_int_equal(pthread_create(&threads[t], NULL, check_concurrently, &failures[t]), 0);
    for (int t = 0; t < 4; t++) assert_int_equal(pthread_join(threads[t], NULL), 0);
    for (int t = 0; t < 4; t++) assert_int_equal(failures[t], 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_integers_and_thousands_separators),
        cmocka_unit_test(test_decimals),
        cmocka_unit_test(test_fractions),
        cmocka_unit_test(test_repeating_decimals),
        cmocka_unit_test(test_mixed_numbers),
        cmocka_unit_test(test_percentages),
        cmocka_unit_test(test_negatives_and_unicode_minus),
        cmocka_unit_test(test_scientific_notation),
        cmocka_unit_test(test_latex_spacing_and_sizing),
        cmocka_unit_test(test_text_units),
        cmocka_unit_test(test_degrees),
        cmocka_unit_test(test_degrees_against_radians),
        cmocka_unit_test(test_logarithms_and_e),
        cmocka_unit_test(test_numbers_in_quotes),
        cmocka_unit_test(test_compound_units),
        cmocka_unit_test(test_real_line_and_intervals),
        cmocka_unit_test(test_equations_against_tuples),
        cmocka_unit_test(test_floor_and_ceiling),
        cmocka_unit_test(test_matrices_and_vectors),
        cmocka_unit_test(test_dollars),
        cmocka_unit_test(test_radicals),
        cmocka_unit_test(test_pi),
        cmocka_unit_test(test_algebraic_expressions),
        cmocka_unit_test(test_equations),
        cmocka_unit_test(test_intervals),
        cmocka_unit_test(test_inequalities_against_intervals),
        cmocka_unit_test(test_answer_in_a_sentence),
        cmocka_unit_test(test_tuples_are_ordered),
        cmocka_unit_test(test_sets_are_unordered),
        cmocka_unit_test(test_multiple_choice_letters),
        cmocka_unit_test(test_text_answers),
        cmocka_unit_test(test_other_numbers_bases_factorials),
        cmocka_unit_test(test_near_misses_are_rejected),
        cmocka_unit_test(test_hedged_answers_are_rejected),
        cmocka_unit_test(test_unparseable_gold_is_no_score),
        cmocka_unit_test(test_extract_boxed_and_answer_tag),
        cmocka_unit_test(test_gold_forms),
        cmocka_unit_test(test_score_and_reason),
        cmocka_unit_test(test_bad_arguments_are_clear_errors),
        cmocka_unit_test(test_hostile_answers),
        cmocka_unit_test(test_concurrent_checks_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
