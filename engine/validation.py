"""Validation of a command's options against its schema: no input reaches torch unchecked.

Errors name the field (``options.prompt``) and the rule, so a front can show them as is.
The result is canonical (defaults filled in, types normalised) so that (command, options, seed)
fully describes a job.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from engine.protocol import CommandSpec, OptionSpec, OptionType


@dataclass
class FieldError(Exception):
    field: str
    message: str
    code: str = "invalid_option"

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def _coerce(opt: OptionSpec, value: Any, field: str) -> Any:
    t = opt.type
    if t is OptionType.boolean:
        if isinstance(value, bool):
            return value
        raise FieldError(field, "must be true or false")
    if t is OptionType.integer:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                isinstance(value, float) and not value.is_integer()):
            raise FieldError(field, "must be a whole number")
        return int(value)
    if t is OptionType.number:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise FieldError(field, "must be a finite number")
        return float(value)
    if not isinstance(value, str):
        raise FieldError(field, "must be a string")
    # Strings reach models and logs: refuse control characters except tab/newline.
    if any(ord(c) < 32 and c not in "\t\n" for c in value):
        raise FieldError(field, "must not contain control characters")
    if any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        # a lone surrogate (undecodable command-line bytes, a hand-made request object) cannot
        # be written to a file's metadata, the ledger or a log as UTF-8: refuse it at every front
        raise FieldError(field, "must be valid Unicode text (no lone surrogates)")
    return value.strip()


def _check_rules(opt: OptionSpec, value: Any, field: str) -> None:
    if opt.min_value is not None and value < opt.min_value:
        raise FieldError(field, f"must be at least {_num(opt.min_value)}")
    if opt.max_value is not None and value > opt.max_value:
        raise FieldError(field, f"must be at most {_num(opt.max_value)}")
    if isinstance(value, str):
        if opt.min_length is not None and len(value) < opt.min_length:
            raise FieldError(field, f"must be at least {opt.min_length} characters")
        if opt.max_length is not None and len(value) > opt.max_length:
            raise FieldError(field, f"must be at most {opt.max_length} characters")
    if opt.choices and value not in [c.value for c in opt.choices]:
        allowed = ", ".join(repr(c.value) for c in opt.choices)
        raise FieldError(field, f"must be one of {allowed}")


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def validate_option_values(specs: list[OptionSpec], values: dict[str, Any],
                           prefix: str = "options") -> dict[str, Any]:
    """Validate ``values`` against ``specs``; returns the canonical dict (defaults filled)."""
    if not isinstance(values, dict):
        raise FieldError(prefix, "must be an object")
    known = {o.name: o for o in specs}
    for name in values:
        if name not in known:
            raise FieldError(f"{prefix}.{name}", "is not an option of this command")
    out: dict[str, Any] = {}
    for opt in specs:
        field = f"{prefix}.{opt.name}"
        value = values.get(opt.name)
        if value is None:
            if opt.required:
                raise FieldError(field, "is required")
            if opt.default is not None:
                out[opt.name] = opt.default
            continue
        value = _coerce(opt, value, field)
        if opt.required and value == "":
            raise FieldError(field, "is required and must not be empty")
        _check_rules(opt, value, field)
        out[opt.name] = value
    return out


@dataclass(frozen=True)
class ValidatedJob:
    options: dict[str, Any]
    seed: int | None
    count: int


def validate_job_options(cmd: CommandSpec, options: dict[str, Any], seed: int | None,
                         count: int | None, engine_max_count: int) -> ValidatedJob:
    """Split job-level options (seed/count) from the plugin's own, and validate both."""
    options = dict(options) if isinstance(options, dict) else options
    if not isinstance(options, dict):
        raise FieldError("options", "must be an object")
    job_specs = {o.job_field: o for o in cmd.options if o.job_field}
    plugin_specs = [o for o in cmd.options if not o.job_field]
    for job_field, spec in job_specs.items():
        if spec.name in options:
            value = options.pop(spec.name)
            given = seed if job_field == "seed" else count
            if given is not None and value is not None and given != value:
                raise FieldError(f"options.{spec.name}", f"conflicts with the job's {job_field}")
            if job_field == "seed":
                seed = value if value is not None else seed
            else:
                count = value if value is not None else count
    if seed is not None:
        spec = job_specs.get("seed")
        if spec is not None:
            seed = _coerce(spec, seed, "seed")
            _check_rules(spec, seed, "seed")
    max_count = min(cmd.max_count, engine_max_count)
    if count is None:
        spec = job_specs.get("count")
        count = int(spec.default) if spec is not None and spec.default is not None else 1
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= max_count:
        raise FieldError("count", f"must be a whole number from 1 to {max_count}")
    return ValidatedJob(validate_option_values(plugin_specs, options), seed, count)
