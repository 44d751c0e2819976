#!/usr/bin/env python3
"""Fails when a function in common/, worker/ or launcher/ is longer than the limit (default 80 lines).

    scripts/check-function-size.py [--max-lines N] [--list] [FILE...]

A function is counted from the line of its opening brace to the line of its closing brace. Comments and
string literals are ignored when matching braces. Lambdas inside a function count towards it. Declarative
tables (the configuration schemas) are exempt when their definition line carries the marker comment
`// function-size: table`. Exit 0 when every function fits, 1 otherwise (one FILE:LINE line each),
2 on bad usage.
"""
import argparse
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
FOLDERS = ("common", "worker", "launcher")
MARKER = "function-size: table"
NOT_FUNCTIONS = re.compile(r"^\s*(template\s*<.*>\s*)?(if|for|while|switch|catch|do|else|return|namespace|class|struct|union|enum|extern)\b")


def strip_code(text):
    """Replaces comments and string/char literals by spaces, keeping newlines (so line numbers hold)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("".join(ch if ch == "\n" else " " for ch in text[i:j]))
            i = j
        elif text.startswith('R"', i):
            m = re.match(r'R"([^(\s]*)\(', text[i:])
            end = text.find(")" + m.group(1) + '"', i) if m else -1
            j = n if end < 0 else end + len(m.group(1)) + 2
            out.append("".join(ch if ch == "\n" else " " for ch in text[i:j]))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(" " * (min(j + 1, n) - i))
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


INIT_LIST = re.compile(r"\)\s*:")
FUNCTION_HEAD = re.compile(r"\)\s*(const|noexcept|override|final|mutable|&|&&|\s)*$|"
                           r"\)\s*(const\s*)?(noexcept\s*)?->\s*[^;{}]+$")


def brace_kind(head, in_function):
    """What a '{' opens: 'fn' (a function body), 'init' (a member's brace-init in a constructor's
    initialiser list, part of the function's head) or 'block' (anything else)."""
    if in_function:
        return "block"
    if NOT_FUNCTIONS.match(head):
        return "block"
    if INIT_LIST.search(head) and re.search(r"[\w>]$", head):
        return "init"
    if FUNCTION_HEAD.search(head) or (INIT_LIST.search(head) and head.endswith(("}", ")"))):
        return "fn"
    return "block"


def functions(path):
    """Yields (name, first_line, line_count, exempt) for each function definition in the file."""
    raw = path.read_text(encoding="utf-8", errors="replace")
    raw_lines = raw.split("\n")
    code = strip_code(raw)
    scopes = []  # for each open brace: (kind, line, name)
    header = ""  # code since the last ';', '{' or '}' outside function bodies
    line = 1
    for ch in code:
        in_function = any(kind == "fn" for kind, _, _ in scopes)
        if ch == "\n":
            line += 1
            header += " "
        elif ch == "{":
            head = " ".join(header.split())
            kind = brace_kind(head, in_function)
            m = re.search(r"([~\w:]+)\s*\(", head)
            scopes.append((kind, line, (m.group(1) if m else "lambda") if kind == "fn" else ""))
            header = header + "{" if kind == "init" else ""
        elif ch == "}":
            kind, start, name = scopes.pop() if scopes else ("block", line, "")
            if kind == "fn":
                context = "\n".join(raw_lines[max(0, start - 4):start])
                yield name, start, line - start + 1, MARKER in context
            header = header + "}" if kind == "init" else ""
        elif ch == ";" and not in_function:
            header = ""
        else:
            header += ch


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-lines", type=int, default=80)
    parser.add_argument("--list", action="store_true", help="print every function over the limit, exempt ones too")
    parser.add_argument("files", nargs="*")
    args = parser.parse_args()
    if args.max_lines < 1:
        print("check-function-size.py: error: --max-lines must be >= 1", file=sys.stderr)
        return 2
    if args.files:
        files = [pathlib.Path(f) for f in args.files]
    else:
        tracked = subprocess.run(["git", "-C", str(ROOT), "ls-files", *FOLDERS], capture_output=True, text=True,
                                 check=True).stdout.split()
        files = [ROOT / f for f in tracked if f.endswith((".cpp", ".h"))]
    bad = 0
    for f in files:
        for name, first, count, exempt in functions(f):
            if count > args.max_lines and (args.list or not exempt):
                rel = f.relative_to(ROOT) if f.is_absolute() and ROOT in f.parents else f
                print(f"{rel}:{first}: {name} has {count} lines (limit {args.max_lines})"
                      + (" [exempt: declarative table]" if exempt else ""))
                bad += 0 if exempt else 1
    if bad:
        print(f"check-function-size.py: {bad} function(s) over {args.max_lines} lines; split them into functions "
              "with one job each", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
