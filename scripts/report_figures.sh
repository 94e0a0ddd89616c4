#!/usr/bin/env bash
# Copies the accuracy, response-length and <think>-share plots of a run's report
# (RUN_DIR/report.html, written by `aha report`) into OUT_DIR as standalone SVG files, for
# the README. Usage: scripts/report_figures.sh RUN_DIR OUT_DIR
set -euo pipefail
[[ $# -eq 2 ]] || { echo "usage: $0 RUN_DIR OUT_DIR" >&2; exit 2; }
report=$1/report.html
[[ -f $report ]] || { echo "$report: no report (run aha report $1 first)" >&2; exit 1; }
mkdir -p "$2"
awk -v out="$2" '
  /<figure><svg/ { buf = ""; inside = 1; sub(/.*<figure>/, "") }
  inside { buf = buf $0 "\n" }
  inside && /<\/svg><\/figure>/ {
    inside = 0; sub(/<\/figure>\n$/, "\n", buf)
    name = ""
    if (buf ~ /font-weight="bold">accuracy</) name = "accuracy"
    else if (buf ~ /font-weight="bold">response length/) name = "length"
    else if (buf ~ /font-weight="bold">share of completions with &lt;think&gt;</) name = "think"
    if (name != "") { file = out "/" name ".svg"; printf "%s", buf > file; close(file) }
  }' "$report"
ls "$2"/accuracy.svg "$2"/length.svg "$2"/think.svg >/dev/null
