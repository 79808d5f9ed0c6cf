"""Reading a mapping document: YAML text -> :class:`PartnerMapping`, every error naming the key and its
line (``mapping.yaml: line 7: fields.status.words.ready: ...``). Pure: the text is handed in."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from vercel_sync.errors import ConfigurationError
from vercel_sync.mapping.engine import PartnerMapping
from vercel_sync.mapping.model import FORM_TAGS, MappingDocument

DEFAULT_MAPPING_FILE = Path(__file__).with_name("default.yaml")
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the nodes, for their lines


class MappingError(ConfigurationError):
    """A mapping document that cannot be used; the message names where (origin, line, key) and why."""


# Far beyond any mapping (an SSM parameter holds 8 KB, an advanced one 64 KB): a document this large is a mistake.
MAX_MAPPING_CHARACTERS = 1_000_000


def parse_mapping(text: str, origin: str) -> PartnerMapping:
    """The mapping ``text`` holds; ``origin`` (a path, a parameter name) starts every error message."""
    if len(text) > MAX_MAPPING_CHARACTERS:
        raise MappingError(f"{origin}: larger than {MAX_MAPPING_CHARACTERS:,} characters: not a mapping")
    try:
        root = yaml.compose(text, Loader=_Loader)
        _check_nodes(root)
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(error, "problem", None) or "not valid YAML"
        raise MappingError(f"{origin}: {where}{problem}") from None
    except _NodeProblem as problem:
        raise MappingError(f"{origin}: line {problem.line}: {problem}") from None
    if not isinstance(data, dict):
        raise MappingError(f"{origin}: line 1: the mapping must be a YAML mapping (schemaVersion, fields, ...)")
    try:
        document = MappingDocument.model_validate(data)
    except ValidationError as error:
        raise MappingError(_describe(error, root, origin)) from None
    return PartnerMapping(document, origin=origin)


class _NodeProblem(Exception):
    def __init__(self, node: yaml.Node, message: str) -> None:
        super().__init__(message)
        self.line = node.start_mark.line + 1


def _check_nodes(root: yaml.Node | None) -> None:
    """Refuses what YAML takes silently: a key given twice (the last would win), and anchors and aliases
    (a billion-laughs document expands into every payload of a constant that holds it)."""
    seen: set[int] = set()
    pending: list[tuple[yaml.Node, str]] = [(root, "")] if root is not None else []
    while pending:
        node, where = pending.pop()
        if id(node) in seen:
            raise _NodeProblem(node, "anchors and aliases (&name, *name) are not allowed in a mapping")
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for key, value in node.value:
                path = f"{where}.{key.value}" if where else str(key.value)
                if isinstance(key, yaml.ScalarNode) and key.value in first:
                    raise _NodeProblem(key, f"{path}: given twice (first on line {first[key.value]})")
                first.setdefault(str(key.value), key.start_mark.line + 1)
                pending += [(key, path), (value, path)]
        elif isinstance(node, yaml.SequenceNode):
            pending += [(child, f"{where}.{index}") for index, child in enumerate(node.value)]


def _describe(error: ValidationError, root: yaml.Node | None, origin: str, limit: int = 5) -> str:
    lines = []
    problems = error.errors(include_url=False, include_context=False, include_input=False)
    for problem in problems[:limit]:
        keys = [part for part in problem["loc"] if not _is_union_branch(part)]
        line = _line_of(root, keys)
        key = ".".join(str(part) for part in keys) or "document"
        lines.append(f"{origin}: line {line}: {key}: {problem['msg']}")
    if len(problems) > limit:
        lines.append(f"and {len(problems) - limit} more")
    return "\n".join(lines)


def _is_union_branch(part: Any) -> bool:
    """pydantic names the form of a union it read (a tag of ``model.py``): not a key of the document."""
    return isinstance(part, str) and part in FORM_TAGS


def _line_of(node: yaml.Node | None, keys: list[Any]) -> int:
    """The line (from 1) of the deepest node of ``keys`` the document has (a missing key: its parent's)."""
    if node is None:
        return 1
    line: int = node.start_mark.line + 1
    for key in keys:
        marked: yaml.Node | None = None  # the node whose line names this key: the key's own, or the item's
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            marked, child = next(((name, value) for name, value in node.value if name.value == str(key)), (None, None))
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            marked = child = node.value[key]
        if marked is None or child is None:
            break
        line, node = marked.start_mark.line + 1, child
    return line


def read_mapping_file(path: str | Path) -> PartnerMapping:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise MappingError(f"{path}: cannot be read ({error.strerror or type(error).__name__})") from None
    except UnicodeDecodeError:
        raise MappingError(f"{path}: not UTF-8 text") from None
    return parse_mapping(text, str(path))


@cache
def default_mapping() -> PartnerMapping:
    """The shipped mapping: today's partner record, field for field."""
    return read_mapping_file(DEFAULT_MAPPING_FILE)
