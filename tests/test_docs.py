"""The README and the operating contract stay true to the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer.main

from bot.cli import app
from bot.config import Settings
from handlers.grammar import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
CONTRACT = ROOT.parent / "shared" / "docs" / "contract.md"


@pytest.mark.parametrize("verb", sorted(COMMANDS))
def test_every_text_command_and_its_chinese_alias_is_in_the_readme(verb: str) -> None:
    assert f"`{verb}" in README
    assert COMMANDS[verb].alias in README


def test_every_cli_command_is_in_the_readme_with_help() -> None:
    group = typer.main.get_group(app)
    for name, command in group.commands.items():
        assert f"`{name}" in README or f" {name}" in README, name
        assert command.help and command.help.strip(), f"minpcode {name} has no --help text"


def test_quick_start_has_exactly_two_commands() -> None:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash", 1)[1].split("```", 1)[0]
    commands = [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert [c.split("#")[0].strip() for c in commands] == ["bash scripts/run", "bash scripts/test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash scripts/test" in ci


@pytest.mark.skipif(not CONTRACT.exists(), reason="shared/ is not beside this checkout")
def test_every_setting_in_the_contract_is_a_setting() -> None:
    names = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", CONTRACT.read_text(encoding="utf-8")))
    fields = {name.upper() for name in Settings.model_fields}
    settings = {n for n in names if n.startswith(("MINPCODE_", "SLACK_", "WECHAT_", "GIO_", "WECOM_"))}
    assert settings and settings <= fields, settings - fields
