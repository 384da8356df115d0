"""Turning JSON params into the classes of params.py, strictly, with an error per field.

The converter accepts only the JSON type each field declares: no string for a number, no
number for a string, no true for 1, no unknown field. A request that does not fit gets one
InvalidParams error that names every field at fault.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Type, TypeVar

import attrs
import cattrs
from cattrs.errors import ForbiddenExtraKeysError
from cattrs.gen import make_dict_structure_fn, override
from lsprotocol import converters as lsp_converters
from pygls.protocol import JsonRPCNotification, JsonRPCRequestMessage, JsonRPCResponseMessage

from . import params
from .params import MAX_SHOWN_CHARACTERS, describe
from .errors import InvalidParams

T = TypeVar("T")


def _strict_str(value: Any, _: type) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {describe(value)}")
    return value


def _strict_int(value: Any, _: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer() and math.isfinite(value):
            return int(value)
        raise TypeError(f"expected a whole number, got {describe(value)}")
    return value


def _strict_float(value: Any, _: type) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number, got {describe(value)}")
    return float(value)


def _strict_bool(value: Any, _: type) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {describe(value)}")
    return value


def _job_id(value: Any, _: type) -> str:
    if isinstance(value, float) and value.is_integer() and math.isfinite(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TypeError(f"expected a job id (a string such as \"12\", or a whole number), got {describe(value)}")
    return str(value)


def _string_list(value: Any, _: type) -> List[str]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list of strings, got {describe(value)}")
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise TypeError(f"expected a list of strings, but item {index} is {describe(item)}")
    return list(value)


def _string_map(value: Any, _: type) -> Dict[str, str]:
    if not isinstance(value, dict):
        raise TypeError(f"expected an object of string values, got {describe(value)}")
    for key, item in value.items():
        if not isinstance(item, str):
            raise TypeError(f"expected an object of string values, but {key[:MAX_SHOWN_CHARACTERS]!r} is {describe(item)}")
    return dict(value)


PARAM_CLASSES = (params.RunParams, params.JobParams, params.StopParams, params.RerunParams,
                 params.ListParams, params.CheckParams)


def make_params_converter() -> cattrs.Converter:
    converter = cattrs.Converter(detailed_validation=True, forbid_extra_keys=True)
    for kind, hook in ((str, _strict_str), (int, _strict_int), (float, _strict_float), (bool, _strict_bool),
                       (params.JobId, _job_id)):
        converter.register_structure_hook(kind, hook)
    for generic, hook in ((List[str], _string_list), (Dict[str, str], _string_map)):
        converter.register_structure_hook_func(lambda kind, generic=generic: kind == generic, hook)
    for cls in PARAM_CLASSES:
        renames = {field.name: override(rename=params.to_camel(field.name)) for field in attrs.fields(cls)}
        converter.register_structure_hook(
            cls, make_dict_structure_fn(cls, converter, _cattrs_forbid_extra_keys=True, **renames))
    return converter


PARAMS_CONVERTER = make_params_converter()


def _field_of(error: BaseException) -> str | None:
    for note in getattr(error, "__notes__", []):
        name = getattr(note, "name", None)
        if name:
            return params.to_camel(name)
    return None


def _errors_of(error: BaseException, cls: type) -> list[dict[str, str]]:
    """Return one {path, message} per fault inside a cattrs validation error."""
    found: list[dict[str, str]] = []
    for sub in getattr(error, "exceptions", [error]):
        field = getattr(sub, "field", None) or _field_of(sub)
        path = f"params.{field}" if field else "params"
        if isinstance(sub, ForbiddenExtraKeysError):
            known = ", ".join(params.to_camel(f.name) for f in attrs.fields(cls))
            for key in sorted(sub.extra_fields):
                found.append({"path": f"params.{key[:MAX_SHOWN_CHARACTERS]}",
                              "message": f"unknown field; this method takes {known}"})
        elif isinstance(sub, KeyError):
            found.append({"path": path, "message": "required field missing"})
        elif isinstance(sub, cattrs.BaseValidationError):
            found.extend(_errors_of(sub, cls))
        else:
            found.append({"path": path, "message": str(sub) or type(sub).__name__})
    return found


def structure_params(raw: Any, cls: Type[T]) -> T:
    """Return `raw` as an instance of `cls`, or raise InvalidParams naming each faulty field."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InvalidParams([{"path": "params", "message": f"expected an object, got {describe(raw)}"}])
    try:
        return PARAMS_CONVERTER.structure(raw, cls)
    except cattrs.BaseValidationError as error:
        raise InvalidParams(_errors_of(error, cls)) from None
    except (TypeError, ValueError) as error:
        raise InvalidParams([{"path": "params", "message": str(error)}]) from None


def _plain_message(obj: dict[str, Any], cls: type) -> Any:
    names = [field.name for field in attrs.fields(cls)]
    return cls(**{name: obj.get(name) for name in names})


def _payload_unstructurer(converter: cattrs.Converter, payload_field: str):
    """Return an unstructure hook that passes a dict or list payload through as it is.

    The bgrun handlers return plain JSON, and cattrs would otherwise walk every value of a
    1000-job list one by one (about 50 ms). Other payloads, such as lsprotocol objects, are
    unstructured as usual.
    """
    def unstructure(message: Any) -> dict[str, Any]:
        result = {field.name: getattr(message, field.name) for field in attrs.fields(type(message))}
        payload = result[payload_field]
        if not isinstance(payload, (dict, list)):
            result[payload_field] = converter.unstructure(payload)
        return result
    return unstructure


def make_protocol_converter() -> cattrs.Converter:
    """Return lsprotocol's converter, keeping the params of custom messages as plain JSON.

    pygls's default turns them into namedtuples, which renames keys that are not identifiers.
    """
    converter = lsp_converters.get_converter()
    for cls in (JsonRPCRequestMessage, JsonRPCResponseMessage, JsonRPCNotification):
        converter.register_structure_hook(cls, _plain_message)
    converter.register_unstructure_hook(JsonRPCResponseMessage, _payload_unstructurer(converter, "result"))
    converter.register_unstructure_hook(JsonRPCNotification, _payload_unstructurer(converter, "params"))
    return converter
