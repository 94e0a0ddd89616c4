#!/usr/bin/env python3
"""Compares aha's math answer checker with public verifiers on the same pairs.

Reads every {answer, gold, expected} case of tests/reward/test_math.c (our verdicts), runs
Hugging Face Math-Verify (pip install math-verify) and the MATH benchmark's is_equiv
(re-implemented below from hendrycks/math, MIT) on each, and writes
tests/fixtures/math/verifier_pairs.jsonl, one pair per line with every verdict. The test
tests/reward/test_math_verifiers.c checks that each pair where Math-Verify decides otherwise
than we do carries a note from NOTES below, saying why we differ on purpose.

Usage: python3 -m venv /work/venv-rewards && /work/venv-rewards/bin/pip install -r scripts/requirements-math-verify.txt
       /work/venv-rewards/bin/python scripts/math_verifier_compare.py
"""
import codecs
import json
import os
import re
import signal

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(ROOT, "tests", "reward", "test_math.c")
OUT = os.path.join(ROOT, "tests", "fixtures", "math", "verifier_pairs.jsonl")

LITERAL = r'"(?:[^"\\]|\\.)*"'
CASE = re.compile(r"\{\s*((?:%s\s*)+),\s*((?:%s\s*)+),\s*(-?\d)\s*\}" % (LITERAL, LITERAL))


def c_string(literals):
    out = b""
    for lit in re.findall(LITERAL, literals):
        out += codecs.escape_decode(lit[1:-1].encode("utf-8"))[0]
    return out.decode("utf-8", errors="replace")


def cases():
    text = open(TESTS, encoding="utf-8").read()
    for m in CASE.finditer(text):
        yield c_string(m.group(1)), c_string(m.group(2)), int(m.group(3))


# ---- MATH is_equiv (hendrycks/math modeling/math_equivalence.py), re-implemented ----------
def _fix_fracs(string):
    substrs = string.split("\\frac")
    new_str = substrs[0]
    if len(substrs) > 1:
        for substr in substrs[1:]:
            new_str += "\\frac"
            if substr and substr[0] == "{":
                new_str += substr
            else:
                if len(substr) < 2:
                    return string
                a, b = substr[0], substr[1]
                if b != "{":
                    new_str += "{" + a + "}{" + b + "}" + substr[2:]
                else:
                    new_str += "{" + a + "}" + b + substr[2:]
    return new_str


def _fix_a_slash_b(string):
    if len(string.split("/")) != 2:
        return string
    a, b = string.split("/")
    try:
        a, b = int(a), int(b)
        assert string == "{}/{}".format(a, b)
        return "\\frac{" + str(a) + "}{" + str(b) + "}"
    except (AssertionError, ValueError):
        return string


def _remove_right_units(string):
    if "\\text{ " in string:
        return string.split("\\text{ ")[0]
    return string


def _fix_sqrt(string):
    if "\\sqrt" not in string:
        return string
    splits = string.split("\\sqrt")
    new_string = splits[0]
    for split in splits[1:]:
        if split and split[0] != "{":
            new_string += "\\sqrt{" + split[0] + "}" + split[1:]
        else:
            new_string += "\\sqrt" + split
    return new_string


def _strip_string(string):
    string = string.replace("\n", "").replace("\\!", "").replace("\\\\", "\\")
    string = string.replace("tfrac", "frac").replace("dfrac", "frac")
    string = string.replace("\\left", "").replace("\\right", "")
    string = string.replace("^{\\circ}", "").replace("^\\circ", "")
    string = string.replace("\\$", "")
    string = _remove_right_units(string)
    string = string.replace("\\%", "").replace("\%", "")
    string = string.replace(" .", " 0.").replace("{.", "{0.")
    if len(string) == 0:
        return string
    if string[0] == ".":
        string = "0" + string
    if len(string.split("=")) == 2 and len(string.split("=")[0]) <= 2:
        string = string.split("=")[1]
    string = _fix_sqrt(string)
    string = string.replace(" ", "")
    string = _fix_fracs(string)
    if string == "0.5":
        string = "\\frac{1}{2}"
    string = _fix_a_slash_b(string)
    return string


def math_is_equiv(answer, gold):
    try:
        return _strip_string(answer) == _strip_string(gold)
    except Exception:
        return answer == gold


# ---- Math-Verify ----------------------------------------------------------------------------
class Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise Timeout()


def math_verify(answer, gold):
    from math_verify import parse, verify
    from math_verify.parser import ExprExtractionConfig, LatexExtractionConfig

    config = [LatexExtractionConfig(), ExprExtractionConfig()]
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(10)
    try:
        g = parse("$" + gold + "$", extraction_config=config)
        if not g:
            return None
        a = parse("$" + answer + "$", extraction_config=config)
        return bool(verify(g, a))
    except Exception:
        return None
    finally:
        signal.alarm(0)


MATH500 = "/work/shared/data/math500_test.jsonl"


def last_boxed(text):
    at = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if at < 0:
        return None
    i = text.find("{", at)
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1:j]
    return None


def math500_pairs():
    """Rewritings of each MATH-500 gold that must stay equal, and one that must not."""
    if not os.path.exists(MATH500):
        return
    for line in open(MATH500, encoding="utf-8"):
        gold = json.loads(line)["answer"]
        if gold.startswith("\\text"):
            continue
        fraction = re.fullmatch(r"(-?)\\[dt]?frac\{(\d+)\}\{(\d+)\}", gold)
        if fraction:
            yield "%s%s/%s" % fraction.groups(), gold, 1
        if "\\frac" in gold:
            yield gold.replace("\\frac", "\\dfrac"), gold, 1
        if "=" not in gold and "," not in gold and "\\in" not in gold:
            yield "x = " + gold, gold, 1
            yield "{%s}+1" % gold, gold, 0
        compact = re.sub(r"(?<![A-Za-z]) | (?![A-Za-z])", "", gold)  # "\\cot x" keeps its space
        if compact != gold:
            yield compact, gold, 1


# Why we decide otherwise than Math-Verify, where we do on purpose: (answer, gold) -> note.
LENIENT_FORM = "aha reads this way of writing the answer; Math-Verify does not parse it"
DEGREES = "aha reads a side with a degree mark in radians when the other side has pi; Math-Verify compares the numbers"
STRAY_QUOTE = "Math-Verify drops a lone quote; aha strips only a pair around the answer (5' may be feet, f' a derivative)"
REAL_LINE = "aha reads \\mathbb{R} and its halves as intervals; Math-Verify does not"
NOTES = {
    ("\uff11\uff12", "12"): "aha applies Unicode NFKC (full-width digits)",
    ("0.3333333", "\\frac13"): "aha: 1e-8 relative tolerance, Math-Verify rounds; a 7-digit decimal is not 1/3",
    ("6.7\\cdot10^{-5}", ".0000672"): "aha: 1e-8 relative tolerance; 6.7e-5 is not 6.72e-5",
    ("2 1/2", "\\frac52"): "aha: a spaced integer before a/b is a mixed number",
    ("2\\frac{3}{2}", "3"): "aha: an integer before an improper fraction is a product, not a mixed number",
    ("12.5%", "12.5"): "aha: a percent sign may be given or left out",
    ("1.5e3", "1500"): "aha reads plain-text scientific notation",
    ("\\Big(3\\Big)", "3"): LENIENT_FORM + " (sizing commands)",
    ("32348 dollars", "\\$32,\\!348"): "aha drops unit words",
    ("\\sqrt[3]{-8}", "-2"): "aha: odd roots of negative numbers are real",
    ("\u221a2", "\\sqrt{2}"): LENIENT_FORM + " (Unicode radical)",
    ("(5,\u221e)", "(5,\\infty)"): LENIENT_FORM + " (Unicode infinity)",
    ("x > 3", "(3, \\infty)"): "aha: an inequality in one variable equals its interval",
    ("1 < x \\le 3", "(1,3]"): "aha: an inequality in one variable equals its interval",
    ("3 > x", "(-\\infty, 3)"): "aha: an inequality in one variable equals its interval",
    ("x \\le 5", "(-\\infty, 5]"): "aha: an inequality in one variable equals its interval",
    ("-2 \\le x \\le 7", "x \\in [-2,7]"): "aha: an inequality in one variable equals its interval",
    ("\\langle 1, 2\\rangle", "(1,2)"): "aha: a vector may be written with angle brackets",
    ("(-7, 16, 5)", "\\begin{pmatrix} -7 \\\\ 16 \\\\ 5 \\end{pmatrix}"): "aha: a column vector may be written as a tuple",
    ("(1, 2)", "1, 2"): "aha: a bracketed tuple is not an unordered list of solutions",
    ("(B) 12", "B"): "aha: a choice letter may be followed by the choice's text",
    ("B.", "B"): "aha: a choice letter may end with a period",
    ("b", "B"): "aha: a lowercase letter is a variable, not choice B",
    ("1 000 000", "1000000"): "aha: spaces may separate thousands",
    ("1 000 000", "0"): "Math-Verify multiplies 1*000*000; aha reads thousands separators",
    ("0.\\overline{3}", "\\frac13"): "aha reads repeating decimals",
    ("0.1\\overline{6}", "\\frac16"): "aha reads repeating decimals",
    ("1.\\overline{09}", "\\frac{12}{11}"): "aha reads repeating decimals",
    ("-0.\\overline{3}", "-\\frac{1}{3}"): "aha reads repeating decimals",
    ("6 = 5", "5"): "Math-Verify takes the last side of an equation; aha needs every constant side to be the answer",
    ("1 = 2 = 3 = 4 = 5", "5"): "Math-Verify takes the last side of an equation; aha needs every constant side to be the answer",
    ("x^{2/3}", "\\sqrt[3]{x^2}"): "aha: odd roots of negative numbers are real",
    ("2516_9", "2516_8"): "aha: numbers written in different bases differ (Math-Verify drops the base)",
    ("4210_{3}", "4210_{5}"): "aha: numbers written in different bases differ (Math-Verify drops the base)",
    ("\\varnothing", "\\emptyset"): LENIENT_FORM + " (\\varnothing)",
    ("f(x)g(x) = 5", "5"): "aha drops an equation's left side only when it is a single variable or f(x)",
    ("x + y = 5", "5"): "aha drops an equation's left side only when it is a single variable",
    ("5x - 7y + 11z + 4 = 0", "0"): "aha drops an equation's left side only when it is a single variable",
    ("x = 6 = 5", "5"): "Math-Verify takes the last side of an equation; aha needs every constant side to be the answer",
    # issue 15
    ("90^\\circ", "\\frac{\\pi}{2}"): DEGREES,
    ("\\frac{\\pi}{2}", "90^\\circ"): DEGREES,
    ("180\u00b0", "\\pi"): DEGREES,
    ("45 degrees", "\\frac{\\pi}{4}"): DEGREES,
    ("60\\text{ degrees}", "\\frac\\pi3"): DEGREES,
    ("30^\\circ, 150^\\circ", "\\frac{\\pi}{6}, \\frac{5\\pi}{6}"): DEGREES,
    ("x = 120^\\circ", "\\frac{2\\pi}{3}"): DEGREES,
    ("\\log_e 5", "\\ln 5"): "aha reads \\log_b for every base, e too; Math-Verify does not take e as a base",
    ("``12''", "12"): LENIENT_FORM + " (TeX quotes)",
    ("\u201c3/4\u201d", "0.75"): LENIENT_FORM + " (curly quotes)",
    ("'5", "5"): STRAY_QUOTE,
    ("5'", "5"): STRAY_QUOTE,
    ("\"5", "5"): STRAY_QUOTE,
    ("\\mathbb R", "(-\\infty,\\infty)"): REAL_LINE,
    ("\\mathbb{R}^+", "(0,\\infty)"): REAL_LINE,
    ("\\mathbb{R}^{+}", "(0,\\infty)"): REAL_LINE,
    ("\\mathbb{R}_{>0}", "(0, \\infty)"): REAL_LINE,
    ("\\mathbb{R}_{\\ge 0}", "[0,\\infty)"): REAL_LINE,
    ("\\mathbb{R}^-", "(-\\infty,0)"): REAL_LINE,
    ("\\mathbb{R}_{\\leq 0}", "(-\\infty,0]"): REAL_LINE,
    ("5\\text{m}", "5"): "aha: a letter written against the number inside \\text{} is read as a variable (5m); Math-Verify drops it as a unit (right when m is metres)",
    ("x = 2, x = 3", "(2, 3)"): "Math-Verify pairs the right sides with the tuple; aha needs distinct variables (x cannot be both)",
    ("x + y = 2, y = 3", "(2, 3)"): "Math-Verify takes the right sides; x + y = 2 does not state x = 2",
    ("\u230a9.9\u230b", "9"): LENIENT_FORM + " (Unicode floor brackets)",
    ("\\left(\\begin{array}{c}1\\\\2\\end{array}\\right)", "(1,2)"): LENIENT_FORM + " (an array in brackets as a column vector)",
    ("\\begin{pmatrix}1 & 2\\end{pmatrix}", "\\langle 1, 2\\rangle"): "aha: a vector may be a one-row matrix",
}


def main():
    rows = []
    for source, pairs in (("unit", cases()), ("math500", math500_pairs())):
      for answer, gold, expected in pairs:
        rows.append({
            "source": source,
            "answer": answer,
            "gold": gold,
            "aha": expected,
            "math_verify": math_verify(answer, gold),
            "math_is_equiv": math_is_equiv(answer, gold),
            "note": NOTES.get((answer, gold), ""),
        })
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    scored = [r for r in rows if r["aha"] in (0, 1)]
    mv = [r for r in scored if r["math_verify"] is not None]
    agree_mv = sum((r["aha"] == 1) == r["math_verify"] for r in mv)
    agree_eq = sum((r["aha"] == 1) == r["math_is_equiv"] for r in scored)
    print("pairs %d; Math-Verify decided %d, agrees on %d; MATH is_equiv agrees on %d of %d"
          % (len(scored), len(mv), agree_mv, agree_eq, len(scored)))
    for r in mv:
        if (r["aha"] == 1) != r["math_verify"]:
            print("differs: aha %d, Math-Verify %s: [%s] vs [%s]%s" % (
                r["aha"], r["math_verify"], r["answer"], r["gold"], "" if r["note"] else "  (no note)"))


if __name__ == "__main__":
    main()
