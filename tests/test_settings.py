"""One settings builder, every GOVCRAWL_* setting declared (with a doc line) in crawler/settings.py,
and environment variables handled the same way by every command."""

from __future__ import annotations

import argparse
import ast
import re

from crawler import settings as declared
from crawler.runner import ENV_ONLY, env_settings, project_settings
from tests.conftest import REPO

NAME = re.compile(r"\bGOVCRAWL_[A-Z0-9_]*[A-Z0-9]\b")


def names_in_code(source: str) -> set[str]:
    """``GOVCRAWL_*`` names in the code's string literals (f-strings included), not in docstrings
    or comments."""
    tree = ast.parse(source)
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                       ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    return {name for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in docstrings
            for name in NAME.findall(node.value)}


def test_every_setting_used_in_code_is_declared_with_a_doc_line():
    used: set[str] = set()
    for folder in ("crawler", "pipelines", "spiders"):
        for path in (REPO / folder).rglob("*.py"):
            used |= names_in_code(path.read_text("utf-8"))
    assert len(used) > 30  # the scan saw the code's settings
    names = {n for n in vars(declared) if n.startswith("GOVCRAWL_")}
    missing = sorted(used - names - set(ENV_ONLY))
    assert not missing, missing
    lines = (REPO / "crawler" / "settings.py").read_text("utf-8").splitlines()
    for i, line in enumerate(lines):
        if re.match(r"GOVCRAWL_\w+ = ", line):
            assert lines[i - 1].startswith("#:"), line


def test_environment_is_read_the_same_by_every_command(monkeypatch, tmp_path):
    from crawler.archive.cli import _settings as archive_settings

    monkeypatch.setenv("GOVCRAWL_ARCHIVE", str(tmp_path / "a"))
    monkeypatch.setenv("GOVCRAWL_DEDUP_THRESHOLD", "0.8")
    crawl = project_settings()
    archive = archive_settings(argparse.Namespace(archive=None, state_dir=None))
    for settings in (crawl, archive):
        assert settings["GOVCRAWL_ARCHIVE"] == str(tmp_path / "a")
        assert settings.getfloat("GOVCRAWL_DEDUP_THRESHOLD") == 0.8
    # the command line wins over the environment, for both
    assert project_settings({"GOVCRAWL_ARCHIVE": "b"})["GOVCRAWL_ARCHIVE"] == "b"
    given = archive_settings(argparse.Namespace(archive="c", state_dir=None))
    assert given["GOVCRAWL_ARCHIVE"] == "c"


def test_env_settings_ignores_undeclared_and_empty_names():
    env = {"GOVCRAWL_STATE_DIR": "/s", "GOVCRAWL_NOPE": "1", "GOVCRAWL_ARCHIVE": "",
           "GOVCRAWL_PROFILES": "/p", "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    assert env_settings(env) == {"GOVCRAWL_STATE_DIR": "/s",
                                 "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
