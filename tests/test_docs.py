"""Every Python snippet in README.md and docs/*.md runs verbatim, and CI runs the README's test command.

A snippet is a fenced ``python`` block. Each runs as its own script (``python3 -c``) in an
empty folder, as a reader who pastes it would run it. A block that needs what this machine
cannot have is marked by an HTML comment on the line just before its fence,
``<!-- snippet: skip (needs a CIFAR folder) -->``, and is skipped with that reason.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SKIP = re.compile(r"<!--\s*snippet:\s*skip\s*\((?P<reason>[^)]*)\)\s*-->")


def snippets() -> list[tuple[str, str, str | None]]:
    """(id, code, skip reason) of every fenced python block."""
    out = []
    for path in DOCS:
        lines = path.read_text(encoding="utf-8").splitlines()
        i = 0
        while i < len(lines):
            if lines[i].strip() == "```python":
                start = i + 1
                end = next(j for j in range(start, len(lines)) if lines[j].strip() == "```")
                marker = SKIP.search(lines[i - 1]) if i else None
                out.append((f"{path.relative_to(ROOT)}:{start}", "\n".join(lines[start:end]) + "\n",
                            marker.group("reason") if marker else None))
                i = end
            i += 1
    return out


SNIPPETS = snippets()


def test_there_are_snippets_to_run():
    assert len(SNIPPETS) >= 8 and sum(reason is None for *_, reason in SNIPPETS) >= 6


@pytest.mark.slow
@pytest.mark.parametrize("name, code, reason", SNIPPETS, ids=[s[0] for s in SNIPPETS])
def test_snippet_runs_verbatim(tmp_path, name, code, reason):
    if reason is not None:
        pytest.skip(reason)
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          timeout=900, env={**os.environ, "MPLBACKEND": "Agg"})
    assert proc.returncode == 0, f"{name} failed:\n{proc.stderr[-3000:]}"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quickstart = readme[readme.index("## Quickstart"):]
    block = quickstart[quickstart.index("```bash") + len("```bash"):]
    commands = [line.strip() for line in block[:block.index("```")].strip().splitlines()]
    assert len(commands) == 2, commands
    install_and_run, test_command = commands
    assert install_and_run.startswith("python3 -m pip install -e . && ma2ml search")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert test_command in ci, f"CI does not run the README's test command {test_command!r}"
