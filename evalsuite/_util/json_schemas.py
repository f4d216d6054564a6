"""JSON Schema through the ``jsonschema`` library: checking a user's schema, validating a value, reading a schema file.

Why one module: tool parameters, ``response_format``, ``parse.json_schema`` and the ``json_schema`` and
``tool_args_match`` metrics all take user schemas; each must be refused at load time with one sentence when it
is not a schema, and validated the same way (the draft the schema's ``$schema`` names, else 2020-12, which is
what OpenAI's structured outputs accept). ``jsonschema`` is imported only when a schema is used.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import orjson

SCHEMA_SUFFIXES = (".json", ".yaml", ".yml")


def _prefix(what: str) -> str:
    return f"{what}: " if what else ""


def check_schema(schema: Any, what: str = "") -> None:
    """ValueError (starting with ``what``, the key, when given) when ``schema`` is not a valid JSON Schema."""
    import jsonschema

    if not isinstance(schema, (dict, bool)):
        raise ValueError(f"{_prefix(what)}expected a JSON Schema (a mapping such as {{type: object, properties: "
                         f"...}}), got {type(schema).__name__}")
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(part) for part in exc.absolute_path)
        at = f" at {where}" if where else ""
        raise ValueError(f"{_prefix(what)}not a valid JSON Schema{at}: {exc.message}") from None


def schema_error(schema: Any, value: Any) -> str | None:
    """Why ``value`` is not valid against ``schema`` (the first error, with its path), or None when it is valid;
    ValueError when ``schema`` is not a JSON Schema."""
    error = next(iter(_validator(orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)).iter_errors(value)), None)
    if error is None:
        return None
    where = "/".join(str(part) for part in error.absolute_path)
    return f"{where}: {error.message}" if where else error.message


@functools.lru_cache(maxsize=128)
def _validator(schema_json: bytes) -> Any:
    """A compiled validator per schema (keyed by its canonical JSON): an item validates thousands of answers."""
    import jsonschema

    schema = orjson.loads(schema_json)
    check_schema(schema)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def read_schema_file(reference: str, base_dir: Path | None, what: str = "") -> Any:
    """The JSON (or YAML) document of a file named relative to the case file's folder (``base_dir``)."""
    path = Path(reference)
    if not path.is_absolute():
        path = (base_dir if base_dir is not None else Path.cwd()) / path
    if path.suffix.lower() not in SCHEMA_SUFFIXES:
        raise ValueError(f"{_prefix(what)}{reference!r} is neither a mapping nor a .json/.yaml file name; write the "
                         "schema inline, or name a file beside the case file, e.g. schemas/answer.json")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"{_prefix(what)}cannot read {reference!r} ({exc.strerror or exc}; looked in {path.parent}); "
                         "the path is relative to the case file's folder") from None
    import yaml

    try:
        return json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:  # both messages name the line
        kind = "JSON" if path.suffix.lower() == ".json" else "YAML"
        raise ValueError(f"{_prefix(what)}{reference!r} is not valid {kind}: {' '.join(str(exc).split())}") from None
