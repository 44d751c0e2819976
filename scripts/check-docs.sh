#!/usr/bin/env bash
# Checks every relative link of the Markdown documentation: the file or directory it names must exist,
# and a #anchor must be a heading (or an explicit id) of the target page, as GitHub renders anchors.
# Usage: scripts/check-docs.sh [FILE.md ...]   (default: README.md, CONTRIBUTING.md, docs/**/*.md)
# Exit 0 when every link resolves; 1 with one line per broken link (FILE:LINE: ...); 2 for bad usage.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec python3 - "$@" <<'PY'
import os, re, sys, unicodedata

def default_files():
    files = [f for f in ("README.md", "CONTRIBUTING.md") if os.path.exists(f)]
    for root, dirs, names in os.walk("docs"):
        dirs.sort()
        files += [os.path.join(root, n) for n in sorted(names) if n.endswith(".md")]
    return files

FENCE = re.compile(r"^\s{0,3}(```|~~~)")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
EXPLICIT_ID = re.compile(r"""<a\s+(?:name|id)\s*=\s*["']([^"']+)["']""", re.I)
INLINE_LINK = re.compile(r"\]\(\s*<?([^)\s>]*)>?(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)")
REF_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")

def prose_lines(path):
    """(line number, text) of every line outside fenced code blocks."""
    in_fence = None
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            m = FENCE.match(line)
            if m:
                if in_fence is None:
                    in_fence = m.group(1)
                elif m.group(1) == in_fence:
                    in_fence = None
                continue
            if in_fence is None:
                yield number, line.rstrip("\n")

def slug(heading):
    """GitHub's anchor of a heading: rendered text, lower case, punctuation dropped, spaces to '-'."""
    text = CODE_SPAN.sub(lambda m: m.group(2), heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links and images keep their text
    text = re.sub(r"<[^>]+>", "", text)                      # inline HTML
    text = text.strip().lower()
    kept = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch in " -_" or cat[0] in "LN" or cat[0] == "M":
            kept.append(ch)
    return "".join(kept).replace(" ", "-")

anchor_cache = {}

def anchors(path):
    if path not in anchor_cache:
        found, seen = set(), {}
        for _, line in prose_lines(path):
            found.update(EXPLICIT_ID.findall(line))
            m = HEADING.match(line)
            if not m:
                continue
            base = slug(m.group(2))
            n = seen.get(base, 0)
            seen[base] = n + 1
            found.add(base if n == 0 else f"{base}-{n}")
        anchor_cache[path] = found
    return anchor_cache[path]

def check(path):
    problems = []
    base_dir = os.path.dirname(path)
    for number, line in prose_lines(path):
        text = CODE_SPAN.sub("", line)
        targets = INLINE_LINK.findall(text)
        m = REF_DEF.match(text)
        if m:
            targets.append(m.group(1))
        for target in targets:
            if not target or re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):
                continue  # empty, or a URL (https:, mailto:, ...): not checked offline
            file_part, _, anchor = target.partition("#")
            dest = os.path.normpath(os.path.join(base_dir, file_part)) if file_part else path
            if not os.path.exists(dest):
                problems.append(f"{path}:{number}: broken link '{target}': {dest} does not exist")
                continue
            if anchor and dest.endswith(".md") and anchor not in anchors(dest):
                problems.append(f"{path}:{number}: broken link '{target}': no heading '#{anchor}' in {dest}")
    return problems

files = sys.argv[1:] or default_files()
missing = [f for f in files if not os.path.isfile(f)]
if missing:
    print("check-docs: no such file: " + ", ".join(missing), file=sys.stderr)
    sys.exit(2)
problems = [p for f in files for p in check(f)]
for p in problems:
    print(p)
print(f"check-docs: {len(files)} file(s), {len(problems)} broken link(s)", file=sys.stderr)
sys.exit(1 if problems else 0)
PY
