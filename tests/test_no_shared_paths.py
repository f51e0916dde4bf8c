"""The repository stands on its own: no code, test, build or CI file reads the project's shared/ folder beside the checkout.

A bare `git clone` has no shared/ beside it, so the tests read the copies in tests/vectors/. Only
scripts/refresh-vectors, run by hand, reads shared/ to refresh those copies.
"""

from __future__ import annotations

import io
import re
import subprocess
import tokenize
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REFRESH_SCRIPT = "scripts/refresh-vectors"

# "shared" as a component of a path: "<up>/shared", "shared/vectors", Path("..") / "<shared>", join("..", "<shared>")
SHARED_COMPONENT = re.compile(r"(^|[/\\])shared([/\\]|$)")
# the same in a shell or config file, where words and comments are not told apart from strings
SHARED_IN_TEXT = re.compile(r"(?<![\w.-])(\.\./)+shared\b|(?<![\w.-])shared/(vectors|communes)\b")


def python_hits(source: str) -> list[int]:
    """Lines of the string literals that name a path through shared/ (comments and names do not count)."""
    lines = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.STRING:
            # the token's text: for a plain literal, its content with quotes; an f-string keeps its {fields}
            body = tok.string.lstrip("rRbBuUfF")
            for quote in ('"""', "'''", '"', "'"):
                if body.startswith(quote) and body.endswith(quote) and len(body) >= 2 * len(quote):
                    body = body[len(quote):-len(quote)]
                    break
            if SHARED_COMPONENT.search(body):
                lines.append(tok.start[0])
    return lines


def text_hits(text: str) -> list[int]:
    return [n for n, line in enumerate(text.splitlines(), 1) if SHARED_IN_TEXT.search(line)]


def files_to_check() -> list[str]:
    """Every tracked or new (not ignored) Python file, and the build, CI and script files."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    this = Path(__file__).resolve().relative_to(REPO).as_posix()  # its own samples are the bad paths
    return sorted(
        p for p in set(listed)
        if p not in (this, REFRESH_SCRIPT) and (REPO / p).is_file()
        and (p.endswith((".py", ".toml", ".cfg", ".ini", ".sh")) or p == "Makefile"
             or p.startswith((".ci/", "scripts/")))
    )


def test_no_file_reads_the_shared_folder_beside_the_checkout() -> None:
    files = files_to_check()
    assert "tests/vectors/__init__.py" in files and "Makefile" in files and ".ci/run" in files
    found = []
    for path in files:
        text = (REPO / path).read_text(encoding="utf-8")
        hits = python_hits(text) if path.endswith(".py") else text_hits(text)
        found += [f"{path}:{n}" for n in hits]
    assert found == [], "these lines reach the shared/ folder beside the checkout (read the copies in tests/vectors/ instead)"


def test_build_and_ci_never_run_the_refresh_script() -> None:
    """Refreshing the copies reads shared/: a person does it, never `make` or CI."""
    for path in ("Makefile", ".ci/run", "pyproject.toml"):
        assert "refresh-vectors" not in (REPO / path).read_text(encoding="utf-8"), path


def as_written(example: str) -> str:
    """The examples spell the folder @UP@@S@, so that this file itself never names it the way code would."""
    return example.replace("@UP@", "../").replace("@S@", "shared")


@pytest.mark.parametrize(
    "line",
    [
        'VECTORS = json.loads((REPO.parent / "@S@" / "vectors" / "bthome.json").read_text())',
        'p = Path(__file__).parents[2] / "shared/vectors"',
        'p = os.path.join(root, "..", "shared", "communes.json")',
        "p = Path('@UP@@S@/vectors/tic.json')",
        'p = f"{ROOT}/@UP@@S@/communes.json"',
        'p = r"..\\shared\\vectors"',
    ],
)
def test_the_check_sees_each_way_python_names_the_folder(line: str) -> None:
    assert python_hits(as_written(line) + "\n") == [1]


@pytest.mark.parametrize(
    "line",
    [
        'collector.shared_summary(app)  # shared by every stream',
        '"""The pure decoder against every shared vector (a copy in tests/vectors/)."""',
        'VECTORS = load_vectors("bthome.json")',
    ],
)
def test_the_check_lets_the_word_shared_pass(line: str) -> None:
    assert python_hits(line + "\n") == []


def test_the_check_sees_the_folder_in_shell_and_make_files() -> None:
    assert text_hits(as_written("cp @UP@@S@/vectors/*.json tests/vectors/\nX = ok\n")) == [1]
    assert text_hits("VECTORS ?= shared/vectors\n") == [1]
    assert text_hits("# the lock is shared by readers\nshared_x=1\n") == []
