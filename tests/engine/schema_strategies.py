"""Hypothesis strategies from the JSON Schema that pydantic emits (the subset the engine's
OpenAPI document uses: $ref, anyOf, enum/const, object, array, string, integer, number,
boolean, null, and {} for any JSON). hypothesis-jsonschema 0.23 does not work with current
Hypothesis (it calls a private API that changed), hence this small one."""
from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=16),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8)


def from_schema(schema: dict[str, Any], root: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values valid against ``schema``; ``$ref``s resolve in ``root`` (``#/a/b/c``)."""
    if "$ref" in schema:
        node: Any = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        return st.deferred(lambda: from_schema(node, root))
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "anyOf" in schema or "oneOf" in schema:
        return st.one_of([from_schema(s, root) for s in schema.get("anyOf", schema.get("oneOf"))])
    kind = schema.get("type")
    if kind is None:
        return ANY_JSON
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        return st.integers(schema.get("minimum"), schema.get("maximum"))
    if kind == "number":
        low, high = schema.get("minimum", schema.get("exclusiveMinimum")), schema.get("maximum")
        return st.floats(low, high, allow_nan=False, allow_infinity=False,
                         exclude_min="exclusiveMinimum" in schema)
    if kind == "string":
        return st.text(min_size=schema.get("minLength", 0), max_size=min(schema.get("maxLength", 40), 40))
    if kind == "array":
        return st.lists(from_schema(schema.get("items", {}), root), max_size=min(schema.get("maxItems", 3), 3))
    if kind == "object":
        props = schema.get("properties", {})
        required = set(schema.get("required", ()))
        fixed = st.fixed_dictionaries(
            {k: from_schema(v, root) for k, v in props.items() if k in required},
            optional={k: from_schema(v, root) for k, v in props.items() if k not in required})
        if schema.get("additionalProperties", True) is not False and not props:
            return st.dictionaries(st.text(max_size=8), ANY_JSON, max_size=3)
        return fixed
    raise ValueError(f"no strategy for schema {schema!r}")
