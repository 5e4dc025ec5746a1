"""Typed configuration from YAML: dataclasses built from plain dicts, with strict checking.

Unknown keys, wrong types and unreadable files are errors that name the file and the field, so a
typo in a config never silently falls back to a default. YAML is read with the safe loader only,
from files of at most :data:`MAX_YAML_BYTES`, and aliases may add at most :data:`MAX_ALIAS_EXPANSION`
nodes (an alias bomb, "billion laughs", is refused before it is built; so is a recursive alias).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")

#: Largest YAML file read (configs, parameter files, class maps and manifests are kilobytes).
MAX_YAML_BYTES = 16 << 20
#: Most nodes that aliases may add to a document when expanded (what the file does not spell out).
MAX_ALIAS_EXPANSION = 100_000
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ConfigError(ValueError):
    """A configuration file or value is invalid; the message names where and why."""


def read_text_limited(path: str | Path, max_bytes: int, what: str = "file") -> str:
    """The UTF-8 text of ``path``, refusing files over ``max_bytes`` (read no further than that).

    Raises
    ------
    ConfigError
        The file is missing, unreadable, too large or not UTF-8; the message names it.
    """
    path = Path(path)
    try:
        with open(path, "rb") as stream:
            data = stream.read(max_bytes + 1)
    except OSError as error:
        raise ConfigError(f"{path}: cannot read {what}: {error.strerror or error}") from error
    if len(data) > max_bytes:
        raise ConfigError(f"{path}: {what} is larger than {max_bytes} bytes; refusing to read it")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: {what} is not UTF-8 text: {error}") from error


def parse_yaml(text: str, source: str = "YAML") -> Any:
    """Parse one YAML document with the safe loader, refusing alias bombs and recursive aliases.

    Raises
    ------
    ConfigError
        Invalid YAML, a recursive alias, or aliases that would add more than
        :data:`MAX_ALIAS_EXPANSION` nodes; the message starts with ``source``.
    """
    loader = _SAFE_LOADER(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_alias_expansion(node, source)
        return loader.construct_document(node)
    except yaml.YAMLError as error:
        raise ConfigError(f"{source}: invalid YAML: {error}") from error
    finally:
        loader.dispose()


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [child for pair in node.value for child in pair]
    return []


def _check_alias_expansion(root: yaml.Node, source: str) -> None:
    """Count the nodes of ``root`` with every alias expanded, without expanding (memoised, iterative)."""
    expanded: dict[int, int] = {}  # id(node) -> size of its subtree with aliases expanded
    on_path: set[int] = set()
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            expanded[key] = 1 + sum(expanded[id(child)] for child in _children(node))
            if expanded[key] - len(expanded) > MAX_ALIAS_EXPANSION:
                raise ConfigError(f"{source}: YAML aliases expand to more than {MAX_ALIAS_EXPANSION} extra "
                                  f"nodes (an alias bomb?); refusing it")
            continue
        if key in expanded:
            continue
        on_path.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in on_path:
                raise ConfigError(f"{source}: recursive YAML alias (a node contains itself); refusing it")
            if id(child) not in expanded:
                stack.append((child, False))


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping (see :func:`parse_yaml`); an empty file gives an empty dict."""
    path = Path(path)
    data = parse_yaml(read_text_limited(path, MAX_YAML_BYTES, "config"), str(path))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, found {type(data).__name__}")
    return data


def from_dict(cls: type[T], data: dict[str, Any], source: str = "config") -> T:
    """Build dataclass ``cls`` from ``data``, recursing into nested dataclasses.

    Raises
    ------
    ConfigError
        On unknown keys, values of the wrong type, or a failing ``__post_init__`` check; the
        message starts with ``source`` and the dotted field name.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping for {cls.__name__}, found {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {unknown} for {cls.__name__}; known: {sorted(fields)}")
    kwargs = {name: _convert(hints[name], value, f"{source}.{name}") for name, value in data.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{source}: {error}") from error


def load_config(cls: type[T], path: str | Path) -> T:
    """Load dataclass ``cls`` from the YAML file ``path``."""
    return from_dict(cls, load_yaml(path), str(path))


def to_dict(config: Any) -> dict[str, Any]:
    """Plain-dict form of a config dataclass (tuples become lists), for YAML/JSON."""
    return _plain(dataclasses.asdict(config))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where)  # type: ignore[arg-type]
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(arg, value, where)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{where}: {value!r} matches none of {args}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {list(args)}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, found {type(value).__name__}")
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            items = [_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
        elif origin is tuple and args:
            if len(args) != len(value):
                raise ConfigError(f"{where}: expected {len(args)} items, found {len(value)}")
            items = [_convert(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value))]
        else:
            items = [_convert(args[0], v, f"{where}[{i}]") if args else v for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, found {type(value).__name__}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, found {value!r}")
        return float(value)
    if hint in (int, str, bool):
        if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
            raise ConfigError(f"{where}: expected {hint.__name__}, found {value!r}")
        return value
    if hint is typing.Any:
        return value
    raise ConfigError(f"{where}: unsupported config type {hint!r}")
