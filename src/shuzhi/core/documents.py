"""Documents people write and upload (catalogs, indicators, targets, reforms as YAML)."""

from __future__ import annotations

from typing import Any

import yaml

from shuzhi.core.errors import Message, ValidationFailed


def load_yaml(text: str, *, source: str) -> Any:
    """The document, or one line naming ``source``, the line and what is wrong there."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        # the problem alone: str(exc) spans lines, and errors are one line
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ValidationFailed(
            Message(
                "{source}{where}: not valid YAML ({problem})",
                source=source,
                where=where,
                problem=problem,
            )
        ) from None
    except RecursionError:
        # PyYAML composes nested collections recursively; deep enough nesting exhausts
        # the stack before any rule of ours could refuse it
        raise ValidationFailed(
            Message("{source}: not valid YAML (nested too deeply)", source=source)
        ) from None
