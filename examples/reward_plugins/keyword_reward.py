#!/usr/bin/env python3
"""An example reward program for aha: reads one JSON request per line on stdin and answers
one JSON line on stdout. aha keeps it running across calls (one process per worker).

Request: {"prompt": str, "completion": str, "row": {...the data-set row...},
          "completion_tokens": int (-1 when unknown)}
Reply:   {"score": number, "reason": str}, {"score": null, "reason": str} for "no score",
         or {"error": str}.

This one gives 1.0 when the completion mentions every word of the row's "keywords" (a list
of strings, or one string), else the fraction found; no score for a row without keywords.

Use:  rewards: [{type: plugin, name: keywords, command: "python3 examples/reward_plugins/keyword_reward.py"}]
      aha reward score --reward "python3 examples/reward_plugins/keyword_reward.py" --in samples.jsonl
"""
import json
import sys


def score(request):
    keywords = request.get("row", {}).get("keywords")
    if isinstance(keywords, str):
        keywords = [keywords]
    if not keywords:
        return {"score": None, "reason": "the row has no keywords"}
    text = request["completion"].lower()
    found = [k for k in keywords if str(k).lower() in text]
    return {"score": len(found) / len(keywords),
            "reason": "%d/%d keywords" % (len(found), len(keywords))}


def main():
    for line in sys.stdin:
        try:
            reply = score(json.loads(line))
        except Exception as e:  # a bad request costs that sample, not the program
            reply = {"error": "%s: %s" % (type(e).__name__, e)}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
