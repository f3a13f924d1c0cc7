"""Every Python snippet in README.md and docs/*.md runs verbatim, CI runs the README's test command, and the
README's quickstart output is what its quickstart command prints.

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


QUICKSTART_OUTPUT = re.compile(r"<!--\s*quickstart-output\s*-->")
"""The HTML comment on the line before the README's block of the quickstart command's output."""


def quickstart() -> tuple[str, str]:
    """The README's quickstart command after its install step, and the output block the README shows for it."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Quickstart"):]
    commands = section[section.index("```bash") + len("```bash"):]
    install_and_run = commands[:commands.index("```")].strip().splitlines()[0].strip()
    install, run = install_and_run.split(" && ", 1)
    assert install == "python3 -m pip install -e .", install
    marker = QUICKSTART_OUTPUT.search(section)
    assert marker is not None, "README.md shows no <!-- quickstart-output --> block"
    block = section[marker.end():].lstrip("\n")
    assert block.startswith("```\n"), "the quickstart-output marker must be followed by a plain ``` block"
    block = block[len("```\n"):]
    return run, block[:block.index("```")]


def masked(text: str, cwd: Path) -> list[str]:
    """``text``'s lines with what may differ between machines masked: the folder it ran in (absolute paths),
    the device, every number, and the found pipeline's choices (op names, a cell's output blocks). On another
    CPU the learner's float arithmetic, and so the pipeline it finds and the accuracy it trains to, may differ;
    the lines, their order and their wording may not."""
    for folder in {str(cwd), str(cwd.resolve())}:
        text = text.replace(folder + os.sep, ".../")
    text = re.sub(r"\b(cpu|cuda(:\d+)?|mps)\b", "DEVICE", text)
    text = re.sub(r"concat\([^)]*\)", "concat(...)", text)
    text = re.sub(r"\b(?!concat\()[A-Za-z_]\w*\(", "OP(", text)
    text = re.sub(r"\d[\d,]*(\.\d+)?", "#", text)
    return [line.rstrip() for line in text.strip().splitlines()]


def test_the_quickstart_output_masks_only_what_may_differ(tmp_path):
    """The mask keeps wording: a changed word or a missing line is still a difference."""
    run, shown = quickstart()
    assert run.startswith("ma2ml search") and "--out runs/quickstart" in run
    lines = masked(shown, tmp_path)
    assert "wrote runs/quickstart/:" in lines and any(line.startswith("test accuracy #") for line in lines)
    assert masked("aug: Solarize(p=0.8, m=6) then Cutout(p=1.0, m=2)", tmp_path) == \
        masked("aug: AutoContrast(p=0.5, m=5) then Cutout(p=0.5, m=5)", tmp_path)
    assert masked(f"checkpoint {tmp_path}/runs/q/final.pt (cuda, 2.5 s)", tmp_path) == \
        masked("checkpoint .../runs/q/final.pt (cpu, 11.1 s)", tmp_path)
    assert masked("best reward 0.9 (evaluation 3)", tmp_path) != masked("best reward 0.9 (evaluation 3, batch 1)", tmp_path)


@pytest.mark.slow
def test_the_readme_shows_what_the_quickstart_prints(tmp_path):
    """Runs the README's quickstart command (after its install step) as a reader would, in an empty folder,
    and compares its standard output with the README's block, line by line, numbers masked (``masked``).
    It searches the digits table and trains the found pipeline for real (about 35 s on a 2-core CPU)."""
    run, shown = quickstart()
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    proc = subprocess.run(run, shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "PATH": path, "MPLBACKEND": "Agg"})
    assert proc.returncode == 0, f"{run} failed:\n{proc.stderr[-3000:]}"
    assert masked(proc.stdout, tmp_path) == masked(shown, tmp_path), (
        f"README.md's quickstart output is stale; the command now prints:\n{proc.stdout}")


def test_the_readme_stays_short():
    """The front door is read in one sitting: at most 200 lines (the readings live in docs/results.md)."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; move detail to docs/"
