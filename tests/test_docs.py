"""The generated references cannot drift from the code."""

from __future__ import annotations

from pathlib import Path

from shuzhi.cli import reference
from shuzhi.cli.main import app
from shuzhi.core.settings import Settings, reference_markdown

DOCS = Path(__file__).resolve().parents[1] / "docs"
HINT = "run `shuzhi docs generate` and commit the result"


def test_cli_reference_is_current() -> None:
    assert (DOCS / "reference" / "cli.md").read_text(encoding="utf-8") == reference.markdown(app), (
        HINT
    )


def test_settings_reference_is_current() -> None:
    expected = reference_markdown() + "\n"
    assert (DOCS / "reference" / "settings.md").read_text(encoding="utf-8") == expected, HINT


def test_every_setting_is_documented_with_its_variable() -> None:
    text = (DOCS / "reference" / "settings.md").read_text(encoding="utf-8")
    for group, field in Settings.model_fields.items():
        sub = getattr(field.annotation, "model_fields", None)
        if sub:
            for name in sub:
                assert f"SHUZHI_{group.upper()}__{name.upper()}" in text
        else:
            assert f"SHUZHI_{group.upper()}" in text


def test_every_command_has_help() -> None:
    text = reference.markdown(app)
    for block in text.split("### ")[1:]:
        title, _, body = block.partition("\n")
        assert body.strip() and not body.strip().startswith("|"), f"{title} has no help text"


def test_docs_pages_exist_and_link_the_references() -> None:
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    for page in ("get-started.md", "concepts.md", "reference/cli.md", "reference/settings.md"):
        assert (DOCS / page).is_file(), page
        assert page in index, f"docs/index.md does not link {page}"


def test_every_plugin_hook_is_documented() -> None:
    from shuzhi.core.plugins import Hooks

    text = (DOCS / "reference" / "plugins.md").read_text(encoding="utf-8")
    hooks = [name for name in vars(Hooks) if name.startswith("shuzhi_")]
    assert hooks
    for name in hooks:
        assert f"## `{name}`" in text, f"{name} is not documented in docs/reference/plugins.md"
