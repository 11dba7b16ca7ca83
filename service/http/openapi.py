"""OpenAPI descriptions of request bodies that routes read themselves (several media types,
one object or a list), so the schema documents, and the fuzzer exercises, what is accepted."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


def json_request_body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    """An OpenAPI `requestBody` for a JSON body that the route reads itself."""
    return {
        "required": True,
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema with its `$defs` substituted in place: a `#/$defs/...` reference
    inside an OpenAPI document would resolve against the document, not the schema."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            reference = node.get("$ref", "")
            if reference.startswith("#/$defs/"):
                return resolve(definitions[reference.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(value) for value in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved
