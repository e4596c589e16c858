#!/usr/bin/env bash
# Tracks the report files FINAL_PERFORMANCE_REPORT.md links to, and untracks every other file
# under reports/ (except its README), so the repository carries exactly the runs it cites.
#
#   scripts/track-cited-reports.sh     # then commit
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t cited < <(grep -oE '\(reports/[^)]+\)' FINAL_PERFORMANCE_REPORT.md | tr -d '()' | sort -u)
for file in "${cited[@]}"; do
    [ -f "$file" ] || { echo "cited but missing: $file" >&2; exit 1; }
done
{ git ls-files reports | grep -vx 'reports/README.md' || true; } | while read -r tracked; do
    printf '%s\n' "${cited[@]}" | grep -qx "$tracked" || git rm -q --cached "$tracked"
done
git add -f reports/README.md "${cited[@]}"
echo "tracking ${#cited[@]} cited report file(s)"
