"""Reading a YAML rule file while remembering the line of every value, for error messages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from intake_hub.rules.errors import Problem, RulesError

Loc = tuple[str | int, ...]

# Pydantic's wording for the mistakes operators make most, in their terms.
_FRIENDLY = {
    "extra_forbidden": "unknown setting (misspelt?)",
    "missing": "required setting is missing",
}
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Document:
    """A parsed rule file: its plain data and the line each key or item starts on."""

    path: Path
    raw: bytes
    data: Any
    lines: dict[Loc, int]

    def line(self, loc: Sequence[str | int]) -> int:
        """The line of the deepest part of `loc` that exists in the file."""
        loc = tuple(loc)
        while loc not in self.lines:
            loc = loc[:-1]
        return self.lines[loc]

    def problem(self, loc: Sequence[str | int], message: str) -> Problem:
        """A problem located at `loc` in this file."""
        return Problem(self.path, self.line(loc), message)

    def validate(self, model: type[M]) -> M:
        """Validate the data against `model`; every pydantic error becomes a located problem."""
        try:
            return model.model_validate(self.data)
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                loc = tuple(part for part in err["loc"] if part != "[key]")
                dotted = ".".join(str(part) for part in loc)
                message = _FRIENDLY.get(err["type"], err["msg"])
                problems.append(self.problem(loc, f"{dotted}: {message}" if dotted else message))
            raise RulesError(problems) from None


# libyaml's parser when PyYAML was built with it: the rules load at every start, and the
# pure-Python one takes a fifth of a second for the shipped files. Both give line marks.
_Loader = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader


class _Builder:
    """Turns a composed YAML node tree into plain data plus a line map."""

    def __init__(self, path: Path, loader: yaml.SafeLoader | yaml.CSafeLoader) -> None:
        self.path = path
        self.loader = loader
        self.lines: dict[Loc, int] = {}
        self.problems: list[Problem] = []

    def build(self, node: yaml.Node, loc: Loc) -> Any:
        self.lines.setdefault(loc, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            self.loader.flatten_mapping(node)
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                line = key_node.start_mark.line + 1
                if not isinstance(key_node, yaml.ScalarNode):
                    self.problems.append(Problem(self.path, line, "a key must be plain text"))
                    continue
                # The key as written: `12315:` or `yes:` must stay text, not become int or bool.
                key = str(key_node.value)
                if key in out:
                    self.problems.append(Problem(self.path, line, f"duplicate key '{key}'"))
                    continue
                self.lines[(*loc, key)] = line
                out[key] = self.build(value_node, (*loc, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*loc, i)) for i, item in enumerate(node.value)]
        return self.loader.construct_object(node)


def read_document(path: Path) -> Document:
    """Parse one YAML rule file; a missing file, bad syntax or a non-mapping is a RulesError."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise RulesError([Problem(path, None, "file not found")]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RulesError([Problem(path, None, f"not UTF-8 text ({exc.reason})")]) from None
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise RulesError([Problem(path, 1, "the file is empty")])
        builder = _Builder(path, loader)
        data = builder.build(node, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise RulesError([Problem(path, line, f"YAML syntax: {problem}")]) from None
    except yaml.YAMLError as exc:
        raise RulesError([Problem(path, None, f"YAML: {exc}")]) from None
    finally:
        loader.dispose()
    if builder.problems:
        raise RulesError(builder.problems)
    if not isinstance(data, dict):
        raise RulesError([Problem(path, 1, "the file must be a mapping of settings")])
    return Document(path, raw, data, builder.lines)
