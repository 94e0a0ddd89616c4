#!/usr/bin/env python3
"""The HumanEval sweep of the code reward (issue 15): every problem of humaneval.jsonl, as the
data set ships it, scored by `aha reward score --reward code` with four completions made from
its canonical solution:

  body      the canonical body in a ```python block         (must score 1)
  function  prompt + body, the whole function, in a block   (must score 1)
  cut       the body without its last non-empty line        (should score 0)
  pass      the body replaced by `pass`                     (should score 0)

Prints the counts, the problems where a variant scores otherwise, and the time per problem.
Standard library only. Usage:
  scripts/humaneval_sweep.py [--aha build/aha] [--data /work/shared/data/humaneval.jsonl]
                             [--jobs 2] [--timeout 10]
"""
import argparse, json, os, subprocess, sys, tempfile, time


def variants(row):
    body = row["canonical_solution"]
    lines = body.rstrip("\n").split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    cut = "\n".join(lines[:-1]) + "\n" if len(lines) > 1 else "    pass\n"
    return {
        "body": "Here is the body:\n```python\n" + body + "```\n",
        "function": "```python\n" + row["prompt"] + body + "```\nDone.",
        "cut": "```python\n" + cut + "```",
        "pass": "```python\n    pass\n```",
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--aha", default="build/aha")
    ap.add_argument("--data", default="/work/shared/data/humaneval.jsonl")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=10)
    args = ap.parse_args()
    rows = [json.loads(line) for line in open(args.data, encoding="utf-8") if line.strip()]
    expect = {"body": 1.0, "function": 1.0, "cut": 0.0, "pass": 0.0}
    with tempfile.TemporaryDirectory() as tmp:
        for name, want in expect.items():
            path_in, path_out = os.path.join(tmp, name + ".jsonl"), os.path.join(tmp, name + ".out.jsonl")
            with open(path_in, "w", encoding="utf-8") as f:
                for row in rows:
                    f.write(json.dumps(dict(row, completion=variants(row)[name])) + "\n")
            t0 = time.monotonic()
            done = subprocess.run([args.aha, "reward", "score", "--reward", "code", "--in", path_in,
                                   "--out", path_out, "--jobs", str(args.jobs), "--timeout", str(args.timeout)],
                                  capture_output=True, text=True)
            seconds = time.monotonic() - t0
            if done.returncode != 0:
                sys.exit("aha reward score failed (%d): %s" % (done.returncode, done.stderr[-2000:]))
            out = [json.loads(line) for line in open(path_out, encoding="utf-8")]
            hits = [o for o in out if o["reward"] == want]
            others = [o for o in out if o["reward"] != want]
            print("%-8s %3d/%d score %g   %.1f s, %.0f ms per problem (%d jobs)" %
                  (name, len(hits), len(out), want, seconds, 1000 * seconds / len(out), args.jobs))
            for o in others:
                print("    %s: reward %s (%s)" % (o["task_id"], o["reward"], o["reason"]))
            if want == 0.0:  # how the tests told: the check failed, or the program did not even run
                kinds = {}
                for o in hits:
                    reason = o["reason"].split("first failure: ")[-1]
                    kind = "check failed" if reason.startswith("assert") else reason.split(":")[0]
                    kinds[kind] = kinds.get(kind, 0) + 1
                print("    " + ", ".join("%s: %d" % kv for kv in sorted(kinds.items())))


if __name__ == "__main__":
    main()
