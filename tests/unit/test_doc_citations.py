"""Every Markdown page the code, tests and docs cite exists in the repository.

Docstrings and docs cite the project's own pages (docs/platform.md, docs/toxiproxy.md,
...), never pages that are not shipped. A citation is a ``NAME.md`` reference in prose:
Python comments, docstrings and string constants with spaces in them (help texts), comments
of YAML, shell and TOML files, and Markdown outside fenced code. It resolves against the
repository root, docs/, the citing file's folder, runbooks/ and, for tests, the fixtures.
Not citations: a file argument (``--md r.md``) and a placeholder (``runbooks/ID.md``).
A section named after the page (``docs/platform.md, "H-codes"``) must be in one of its
headings, or a bold paragraph lead, so that a renamed section is noticed too.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("simctl", "tests", "docs", "bench", "scripts", "stack", "scenarios", "runbooks",
           "examples", ".ci")
ALWAYS_THERE = {"CHANGELOG.md", "README.md"}

REFERENCE = re.compile(r"(?<![\w/.-])(?P<ref>[\w/.-]*[\w-]\.md)\b")
FILE_ARGUMENT = re.compile(r"--[\w-]+[ =]$")
PLACEHOLDER = re.compile(r"^(?:[A-Za-z]|[A-Z_]+)$")  # x.md, ID.md, NAME.md
FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"`[^`]*`")
DOCUMENTED = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
HASH_COMMENTED = {".yaml", ".yml", ".sh", ".toml"}
SECTION = re.compile(r'[,:]\s*"(?P<section>[^"\n]+)"')  # right after the page: , "Name"
TITLE = re.compile(r"^#+\s+(.*)$|\*\*([^*]+)\*\*", re.M)


def python_prose(text: str, test_code: bool) -> list[tuple[int, str]]:
    """Comments and docstrings; outside tests also string constants holding whitespace
    (help texts). A test's other strings are its data: files it writes, output it expects.
    """
    found = [(tok.start[0], tok.string)
             for tok in tokenize.generate_tokens(io.StringIO(text).readline)
             if tok.type == tokenize.COMMENT]
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, DOCUMENTED) and ast.get_docstring(node, clean=False):
            found.append((node.body[0].lineno, ast.get_docstring(node, clean=False) or ""))
        elif (not test_code and isinstance(node, ast.Constant)
              and isinstance(node.value, str) and re.search(r"\s", node.value)):
            found.append((node.lineno, node.value))
    return found


def markdown_prose(text: str) -> list[tuple[int, str]]:
    """Lines outside fenced blocks, without inline code (commands, file names)."""
    found, fenced = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            found.append((number, INLINE_CODE.sub("", line)))
    return found


def hash_comments(text: str) -> list[tuple[int, str]]:
    return [(number, line[line.index("#"):])
            for number, line in enumerate(text.splitlines(), 1) if "#" in line]


def prose(path: Path, root: Path) -> list[tuple[int, str]]:
    if path.suffix not in {".py", ".md", *HASH_COMMENTED, ""}:
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return []  # not text
    if path.suffix == ".py":
        return python_prose(text, test_code=path.is_relative_to(root / "tests"))
    if path.suffix == ".md":
        return markdown_prose(text)
    if path.suffix in HASH_COMMENTED or text.startswith("#!"):
        return hash_comments(text)
    return []


def resolve(ref: str, citing: Path, root: Path) -> Path | None:
    """The cited file, or None when the repository does not have it."""
    places = [root, root / "docs", citing.parent, root / "runbooks"]
    if (root / "tests") in citing.parents:
        fixtures = root / "tests" / "fixtures"
        places += [fixtures, *(p for p in fixtures.rglob("*") if p.is_dir())]
    for place in places:
        for candidate in (place / ref, place / Path(ref).name):
            if candidate.is_file() and (candidate == place / ref or ref.startswith("runbooks/")):
                return candidate
    return None


def has_section(page: Path, section: str) -> bool:
    wanted = section.replace("`", "").strip().lower()
    return any(wanted in "".join(title).replace("`", "").lower()
               for title in TITLE.findall(page.read_text(encoding="utf-8")))


def scanned_files(root: Path) -> list[Path]:
    files = [root / "README.md"]
    for folder in SCANNED:
        files += sorted(p for p in (root / folder).rglob("*")
                        if p.is_file() and "__pycache__" not in p.parts)
    return [p for p in files if p.exists()]


def dangling_citations(root: Path) -> list[str]:
    dangling = []
    for path in scanned_files(root):
        for number, text in prose(path, root):
            for match in REFERENCE.finditer(text):
                ref = match["ref"]
                if (FILE_ARGUMENT.search(text[:match.start()]) or ref in ALWAYS_THERE
                        or PLACEHOLDER.match(Path(ref).stem)):
                    continue
                page = resolve(ref, path, root)
                where = f"{path.relative_to(root)}:{number}: {ref}"
                if page is None:
                    dangling.append(where)
                elif ((section := SECTION.match(text, match.end()))
                      and not has_section(page, section["section"])):
                    dangling.append(f'{where}, "{section["section"]}"')
    return list(dict.fromkeys(dangling))  # a docstring is also a string constant


def test_every_cited_page_is_in_the_repository() -> None:
    dangling = dangling_citations(ROOT)
    assert not dangling, "cited pages that are not in the repository:\n" + "\n".join(dangling)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "platform.md").write_text("# The platform\n\n## H-codes\n")
    (tmp_path / "README.md").write_text("See docs/platform.md and CHANGELOG.md.\n")
    (tmp_path / "simctl").mkdir()
    return tmp_path


def test_a_missing_page_cited_in_a_docstring_is_found(tree: Path) -> None:
    (tree / "simctl" / "a.py").write_text(
        '"""Router lines (domain.md 3.2), codes (docs/platform.md, "H-codes")."""\n')
    assert dangling_citations(tree) == ["simctl/a.py:1: domain.md"]


def test_comments_yaml_and_markdown_are_read(tree: Path) -> None:
    (tree / "simctl" / "b.py").write_text("X = 1  # as design.md says\n")
    (tree / "simctl" / "c.yaml").write_text("# from toxiproxy-api.md section 2\nid: c\n")
    (tree / "docs" / "d.md").write_text("See style.md.\n\n```\ncat nowhere.md\n```\n")
    assert sorted(dangling_citations(tree)) == [
        "docs/d.md:1: style.md", "simctl/b.py:1: design.md", "simctl/c.yaml:1: toxiproxy-api.md"]


def test_a_section_the_page_lacks_is_found(tree: Path) -> None:
    (tree / "docs" / "platform.md").write_text("# The platform\n\n## H-codes: `codes.py`\n")
    (tree / "simctl" / "f.py").write_text(
        '"""Codes (docs/platform.md, "H-codes"); lines (docs/platform.md, "Log format")."""\n')
    assert dangling_citations(tree) == ['simctl/f.py:1: docs/platform.md, "Log format"']


def test_file_arguments_paths_and_placeholders_are_not_citations(tree: Path) -> None:
    (tree / "simctl" / "e.py").write_text(
        '"""simctl report --md r.md --review pir.md; runbooks/ID.md; platform.md."""\n'
        'OUT = "report.md"\n')
    assert dangling_citations(tree) == []
