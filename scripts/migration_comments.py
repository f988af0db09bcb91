#!/usr/bin/env python3
"""Comment-only edits of applied migrations (scripts/migrate.sh, sql/CHECKSUMS.previous).

An applied migration is checksummed: migrate refuses a file that changed. A change to its
comments alone is allowed once its earlier checksum is listed in sql/CHECKSUMS.previous.

    scripts/migration_comments.py check OLD NEW [VERSION]
                                    exit 0 when OLD and NEW differ in comments only (or, given
                                    VERSION, by its documented removal: REMOVED_STATEMENTS)
    scripts/migration_comments.py accept FILE [REV] list FILE's version at REV (default HEAD) in
                                                   sql/CHECKSUMS.previous, after the check

Comments are `--` to the end of the line and `/* */` (nested), outside string literals,
quoted identifiers and dollar quotes; whitespace at line ends and blank lines are ignored.

Besides comments, REMOVED_STATEMENTS lists the statements deliberately taken out of an applied
migration, one per version, each with its reason: an earlier text that differs from the current
one by comments and by exactly that statement (once, on its own line) is a predecessor too. The
line written for it carries the reason. Nothing else qualifies.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PREVIOUS = ROOT / "sql" / "CHECKSUMS.previous"
# version -> (the statement removed, exactly as it stood on its own line; why)
REMOVED_STATEMENTS: dict[str, tuple[str, str]] = {
    "0001_schema": (
        "CREATE EXTENSION IF NOT EXISTS pgcrypto;",
        "pgcrypto dropped: PostgreSQL >= 13 has gen_random_uuid(), and managed services refuse "
        "extensions off their allow-list (issue 12)",
    ),
}
# version -> (sha256 of strip_comments(earlier text), sha256 of strip_comments(current text), why)
REWRITTEN: dict[str, tuple[str, str, str]] = {
    "0011_jobs_role": (
        "616526f9c7c7d292bd6b9f78cde7cbdc4c476a56e9242eb58c009abe4293e976",
        "f9ca5e144a02c2844a4310b5e23d9555a8da6720a54638e00c4b178fb0d13b8a",
        "role comment and search_path only with CREATEROLE: an installer without it finds "
        "nikita_jobs pre-created (issue 12); same effect for every install that had it",
    ),
}
_DOLLAR = re.compile(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$")


def strip_comments(text: str) -> str:
    """The SQL of `text` without its comments, one statement line per non-blank line."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("--", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif c in "'\"":
            end = i + 1
            while end < n:
                if text[end] == c:
                    if text.startswith(c * 2, end):  # a doubled quote inside the literal
                        end += 2
                        continue
                    break
                end += 1
            out.append(text[i : end + 1])
            i = end + 1
        elif c == "$" and (m := _DOLLAR.match(text, i)) and not _in_word(text, i):
            end = text.find(m.group(0), m.end())
            end = n if end < 0 else end + len(m.group(0))
            out.append(text[i:end])
            i = end
        else:
            out.append(c)
            i += 1
    lines = (line.rstrip() for line in "".join(out).splitlines())
    return "\n".join(line for line in lines if line)


def _in_word(text: str, i: int) -> bool:
    # $1 parameters and identifiers containing $ are not dollar quotes.
    return i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_")


def comment_only(old: str, new: str) -> bool:
    return strip_comments(old) == strip_comments(new)


def removed_only(version: str, old: str, new: str) -> bool:
    """OLD is NEW plus the one statement REMOVED_STATEMENTS documents for VERSION."""
    if version not in REMOVED_STATEMENTS:
        return False
    statement = REMOVED_STATEMENTS[version][0]
    lines = strip_comments(old).splitlines()
    if lines.count(statement) != 1:
        return False
    return "\n".join(line for line in lines if line != statement) == strip_comments(new)


def predecessor(version: str, old: str, new: str) -> str | None:
    """Why OLD may stand for NEW in an install ("comment-only" or the removal's reason)."""
    if comment_only(old, new):
        return "comment-only"
    if removed_only(version, old, new):
        return REMOVED_STATEMENTS[version][1]
    if version in REWRITTEN:
        before, after, why = REWRITTEN[version]
        if (_sql_sha(old), _sql_sha(new)) == (before, after):
            return why
    return None


def _sql_sha(text: str) -> str:
    return hashlib.sha256(strip_comments(text).encode()).hexdigest()


def accept(path: Path, rev: str) -> int:
    rel = path.resolve().relative_to(ROOT).as_posix()
    old = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:{rel}"],
        capture_output=True,
        check=True,
    ).stdout
    new = path.read_bytes()
    if old == new:
        print(f"{rel}: unchanged since {rev}; nothing to list", file=sys.stderr)
        return 1
    why = predecessor(path.stem, old.decode(), new.decode())
    if why is None:
        print(
            f"{rel}: not a comment-only edit of {rev}; add a new migration instead",
            file=sys.stderr,
        )
        return 1
    line = f"{path.stem} {hashlib.sha256(old).hexdigest()}"
    listed = [x.split("#")[0].strip() for x in PREVIOUS.read_text().splitlines()]
    if line not in listed:
        with PREVIOUS.open("a") as f:
            f.write(line + ("" if why == "comment-only" else f"  # {why}") + "\n")
    print(f"{rel}: {why} edit of {rev}; listed as `{line}` in sql/CHECKSUMS.previous")
    return 0


def main(argv: list[str]) -> int:
    if len(argv) in (3, 4) and argv[0] == "check":
        old, new = Path(argv[1]).read_text(), Path(argv[2]).read_text()
        why = predecessor(argv[3], old, new) if len(argv) == 4 else None
        why = why or ("comment-only" if comment_only(old, new) else None)
        print(why or "the SQL differs")
        return 0 if why else 1
    if len(argv) in (2, 3) and argv[0] == "accept":
        return accept(Path(argv[1]), argv[2] if len(argv) == 3 else "HEAD")
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
