"""The README's walk-through, typed as a user would: its own commands, run by bash against a real server.

The commands are read from README.md itself (the ``$ ...`` lines of "Try the demo" and
"Upload, list and roll back"), so an edit to the README is tested as written. Each runs in a
shell where ``.venv/bin`` is on PATH (the README says how) and the ``export`` line that
``mwhost serve`` printed was pasted, from a folder laid out like the repository's root. What
the README shows after a command is compared line by line with what the command printed,
with the parts that differ from run to run (hashes, numbers, ``...``) as wildcards.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT, example_path
from tests.server.gunicorn_process import SECRET_ENV, free_port, supervised

pytestmark = pytest.mark.slow

README = ROOT / "README.md"
SECTIONS = ("## Try the demo", "## Upload, list and roll back")
#: where the README's demo listens; the test's server listens on a free port instead
README_ADDRESS = "127.0.0.1:8000"


def section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start:end if end != -1 else len(text)]


def commands(block: str) -> list[tuple[str, list[str]]]:
    """(command, the output lines the README shows after it) for each ``    $ `` line,
    joining ``\\`` continuations and wrapped output lines, and leaving out the server's own
    start command."""
    found: list[tuple[str, list[str]]] = []
    lines = iter(block.splitlines())
    current: list[str] | None = None
    for line in lines:
        if line.startswith("    $ "):
            command = line[6:]
            while command.endswith("\\"):
                command = command[:-1] + next(lines).strip()
            current = []
            found.append((command.strip(), current))
        elif current and current[-1].endswith(",") and line.startswith("     "):
            current[-1] += " " + line.strip()  # a long JSON line the README wrapped after a comma
        elif current is not None and line.startswith("    ") and line.strip():
            current.append(line[4:])
        else:
            current = None
    return [(command, shown) for command, shown in found if not command.startswith("mwhost serve")]


def pattern(shown: str) -> re.Pattern:
    """A README output line as a regex: ``...`` is anything, hex hashes and numbers vary."""
    parts = []
    for piece in re.split(r"(\.\.\.|[0-9a-f]{12,}|\d+)", shown.strip()):
        if piece == "...":
            parts.append(".*")
        elif re.fullmatch(r"[0-9a-f]{12,}", piece or "x") and not piece.isdigit():
            parts.append("[0-9a-f]+")
        elif piece.isdigit():
            parts.append(r"\d+")
        else:
            parts.append(re.escape(piece))
    return re.compile("".join(parts))


def user_folder(tmp_path: pathlib.Path) -> pathlib.Path:
    """A folder like the repository's root: the README and the built example guests."""
    for name in ("add_header", "add_header_go"):
        example_path(name)
    folder = tmp_path / "repo"
    (folder / "host").mkdir(parents=True)
    (folder / "host" / "examples").symlink_to(ROOT / "host" / "examples")
    (folder / "README.md").write_bytes(README.read_bytes())
    return folder


def test_the_readme_walk_through_works_as_typed(tmp_path):
    """Every command of the README's demo and admin walk-through exits as the README implies
    and prints what the README shows (up to hashes and numbers)."""
    text = README.read_text()
    steps = [step for heading in SECTIONS for step in commands(section(text, heading))]
    assert len(steps) >= 10, steps
    folder = user_folder(tmp_path)
    port = free_port()
    bin_dir = pathlib.Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if k not in (SECRET_ENV, "MWHOST_URL", "MWHOST_TOKEN")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"   # the README's `export PATH=...`
    serve = ["mwhost", "serve", "--workers", "2", "--bind", f"127.0.0.1:{port}"]
    with supervised(serve, tmp_path / "serve.log", port, env, workers=2, cwd=folder) as served:
        pasted = re.search(r"^\s*(export MWHOST_URL=\S+ MWHOST_TOKEN=\S+)$", served.output(), re.M)
        assert pasted, served.output()
        for command, shown in steps:
            typed = command.replace(README_ADDRESS, f"127.0.0.1:{port}")
            result = subprocess.run(["bash", "-c", f"{pasted.group(1)}\n{typed}"], cwd=folder, env=env,
                                    capture_output=True, text=True, timeout=60)
            printed = f"{result.stdout}\n{result.stderr}"  # the terminal shows both
            fails = "error" in "".join(shown[:1])
            assert (result.returncode != 0) == fails, f"$ {command}\n{printed}"
            check_shown(command, shown, printed)


def check_shown(command: str, shown: list[str], printed: str) -> None:
    """Each line the README shows appears in the output, in order (``...`` lines skip)."""
    lines = printed.splitlines()
    at = 0
    for expected in shown:
        if expected.strip() == "...":
            continue
        regex = pattern(expected)
        while at < len(lines) and not regex.match(lines[at].strip()):
            at += 1
        assert at < len(lines), f"$ {command}\nthe README shows: {expected}\nprinted:\n{printed}"
        at += 1
