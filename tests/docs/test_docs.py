"""The README, the pages in docs/ and the operating contract stay true to the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer.main

from bot.cli import app
from bot.config import Settings
from handlers.grammar import COMMANDS

ROOT = Path(__file__).resolve().parents[2]
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


DOCS = ROOT / "docs"
PAGES = sorted(path.relative_to(ROOT).as_posix() for path in DOCS.glob("*.md"))
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_the_readme_fits_on_a_few_screens() -> None:
    assert len(README.encode("utf-8")) < 12_000, "move detail to a page in docs/ and link it"


@pytest.mark.parametrize("setting", sorted(name.upper() for name in Settings.model_fields))
def test_every_setting_is_in_the_configuration_document(setting: str) -> None:
    assert f"`{setting}`" in (DOCS / "configuration.md").read_text(encoding="utf-8"), setting


@pytest.mark.parametrize("document", ["README.md", *PAGES])
def test_links_stay_inside_the_repository_and_lead_somewhere(document: str) -> None:
    path = ROOT / document
    for target in _LINK.findall(path.read_text(encoding="utf-8")):
        if target.startswith(("http://", "https://", "mailto:", "#")):
            continue
        local = (path.parent / target.split("#", 1)[0]).resolve()
        assert local.is_relative_to(ROOT), f"{document} links outside the repository: {target}"
        assert local.exists(), f"{document} links to a missing file: {target}"


def test_the_readme_links_the_projects_documents() -> None:
    assert {"docs/configuration.md", "docs/architecture.md", "docs/guide.md"} <= set(PAGES)
    for name in PAGES:
        assert f"]({name})" in README, name


@pytest.mark.parametrize("document", ["README.md", "CHANGELOG.md", *PAGES])
def test_no_document_cites_the_folder_outside_the_product(document: str) -> None:
    text = (ROOT / document).read_text(encoding="utf-8")
    for internal in ("../shared/", "shared/docs"):
        assert internal not in text, f"{document} cites {internal}"


@pytest.mark.parametrize("page", PAGES)
def test_every_page_starts_with_a_title_and_a_one_line_purpose(page: str) -> None:
    title, blank, purpose = (ROOT / page).read_text(encoding="utf-8").splitlines()[:3]
    assert title.startswith("# ") and not blank and purpose and not purpose.startswith(("#", "|", "`", "-")), page


def test_the_guides_pictures_are_small_real_pngs() -> None:
    from PIL import Image

    pictures = re.findall(r"!\[[^\]]*\]\((img/[^)]+\.png)\)", (DOCS / "guide.md").read_text(encoding="utf-8"))
    assert len(pictures) >= 5
    for picture in pictures:
        path = DOCS / picture
        assert path.stat().st_size < 100_000, picture
        with Image.open(path) as image:
            image.verify()


def test_the_codes_in_the_guide_scan() -> None:
    import zxingcpp
    from PIL import Image

    for name in ("code-b", "code-c", "code-gio"):
        assert zxingcpp.read_barcodes(Image.open(DOCS / "img" / f"{name}.png")), name


def _examples() -> list[str]:
    text = "\n".join((ROOT / page).read_text(encoding="utf-8") for page in PAGES) + README
    return sorted({line.strip() for line in text.splitlines() if line.strip().startswith(("new ", "新建 "))
                   and "<" not in line})


@pytest.mark.parametrize("line", _examples())
def test_every_new_example_in_the_docs_and_readme_is_a_valid_request(line: str) -> None:
    from bot.models import CodeRequest, Provider
    from handlers.grammar import parse

    fields = parse(line).ask().fields
    request = CodeRequest.parse(fields)
    if request.type.counts_against_cap and request.via is None and (request.campaign or request.channel):
        CodeRequest.parse(fields | {"via": Provider.GIO})  # the GrowingIO rules too (names, campaign, channel)


def test_the_manifest_names_the_slack_page_and_it_documents_every_scope() -> None:
    import yaml

    manifest = (ROOT / "manifest.yml").read_text(encoding="utf-8")
    [page] = re.findall(r"See (docs/[a-z-]+\.md)\.", manifest)
    assert page in PAGES, page
    text = (ROOT / page).read_text(encoding="utf-8")
    assert "manifest.yml" in text
    scopes = yaml.safe_load(manifest)["oauth_config"]["scopes"]["bot"]
    assert scopes and all(f"`{scope}`" in text for scope in scopes), [s for s in scopes if f"`{s}`" not in text]


def test_the_readme_lists_every_bot_event_the_manifest_subscribes_to_and_why() -> None:
    import yaml

    events = yaml.safe_load((ROOT / "manifest.yml").read_text(encoding="utf-8"))["settings"]["event_subscriptions"]
    section = README.split("## Slack\n", 1)[1].split("\n## ", 1)[0]
    listed = dict(re.findall(r"^\| `([a-z_.]+)` \| (.+?) \|$", section, flags=re.MULTILINE))
    assert sorted(listed) == sorted(events["bot_events"])  # no event missing, none the manifest lacks
    assert all(len(why.split()) >= 5 for why in listed.values()), listed  # each with its reason


def test_the_openapi_text_names_no_internal_document() -> None:
    import json

    from handlers.api.openapi import openapi_document

    text = json.dumps(openapi_document("http://127.0.0.1:3000"), ensure_ascii=False).lower()
    for internal in ("seed", "shared/docs", "design.md", "contract.md"):
        assert internal not in text, internal


def test_the_code_and_the_docs_name_no_internal_document() -> None:
    files = [p for folder in ("bot", "handlers", "storage") for p in sorted((ROOT / folder).rglob("*.py"))]
    files += [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
    found = [
        f"{path.relative_to(ROOT)}: {internal}"
        for path in files
        for internal in ("seed 00", "shared/docs", "design.md", "contract.md")
        if internal in path.read_text(encoding="utf-8").lower()
    ]
    assert not found, found


def test_the_changelog_names_the_version_pyproject_declares() -> None:
    import tomllib

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    versions = re.findall(r"^## \[([^\]]+)\]", (ROOT / "CHANGELOG.md").read_text(encoding="utf-8"), re.M)
    assert versions[:2] == ["Unreleased", declared], versions
