"""Typed ROS parameters from a validated config dataclass.

Every component has one config dataclass (validated in ``__post_init__``) shared by its node, its
training/offline code and its tests. ``declare_config`` declares each field as a ROS parameter with
the field's ``metadata["help"]`` as description, reads the values back (defaults, YAML files and
overrides applied by rclpy) and builds the dataclass, so invalid parameters fail at start-up with the
dataclass's own error message.
"""

from __future__ import annotations

import dataclasses
import typing

from rcl_interfaces.msg import ParameterDescriptor, ParameterType
from rclpy.exceptions import ParameterUninitializedException

_SCALARS = {
    bool: ParameterType.PARAMETER_BOOL,
    int: ParameterType.PARAMETER_INTEGER,
    float: ParameterType.PARAMETER_DOUBLE,
    str: ParameterType.PARAMETER_STRING,
}
_ARRAYS = {
    bool: ParameterType.PARAMETER_BOOL_ARRAY,
    int: ParameterType.PARAMETER_INTEGER_ARRAY,
    float: ParameterType.PARAMETER_DOUBLE_ARRAY,
    str: ParameterType.PARAMETER_STRING_ARRAY,
}


def _param_type(hint) -> tuple[int, type, bool]:
    """Returns (ParameterType, element type, is_array) for a supported field type hint."""
    origin = typing.get_origin(hint)
    if origin in (list, tuple, typing.Sequence) or hint in (list, tuple):
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        elem = args[0] if args else float
        if elem not in _ARRAYS:
            raise TypeError(f"unsupported list element type {elem!r}")
        return _ARRAYS[elem], elem, True
    if hint in _SCALARS:
        return _SCALARS[hint], hint, False
    raise TypeError(f"unsupported config field type {hint!r}")


def _default(field: dataclasses.Field):
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return field.default_factory()  # type: ignore[misc]
    raise TypeError(f"config field '{field.name}' needs a default to be a ROS parameter")


def _as_float(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"parameter '{name}' must be a number. Got {value!r}")
    return float(value)


def config_fields(config_cls) -> list[tuple[dataclasses.Field, object]]:
    """Returns (field, resolved type hint) of every init field of a config dataclass."""
    hints = typing.get_type_hints(config_cls)
    return [(f, hints[f.name]) for f in dataclasses.fields(config_cls) if f.init]


def declare_config(node, config_cls, prefix: str = "", skip: typing.Iterable[str] = ()):
    """Declares every field of `config_cls` as a parameter of `node` and returns the config.

    Args:
        node: an rclpy Node.
        config_cls: a dataclass whose fields have defaults and ``metadata={"help": ...}``.
        prefix: parameter name prefix (e.g. "perception." for a nested group).
        skip: field names not to declare (they keep their dataclass defaults).

    Raises:
        ValueError: when the parameters do not validate (message from the dataclass, prefixed
            with the node name).
    """
    values = {}
    skip = set(skip)
    for field, hint in config_fields(config_cls):
        if field.name in skip:
            continue
        ptype, elem, is_array = _param_type(hint)
        default = _default(field)
        if is_array:
            default = [elem(v) for v in default]
        # Float parameters accept integers too (YAML `rate_hz: 10`): rclpy's strict typing would
        # reject them, so they are declared with dynamic typing and checked here instead.
        dynamic = elem is float
        descriptor = ParameterDescriptor(
            type=ParameterType.PARAMETER_NOT_SET if dynamic else ptype,
            dynamic_typing=dynamic,
            description=field.metadata.get("help", ""),
        )
        if is_array and not default:
            # An empty list does not say its element type: declare by type (value unset = []).
            from rclpy.parameter import Parameter

            default = Parameter.Type(ptype)
            descriptor.dynamic_typing = False
            descriptor.type = ptype
        node.declare_parameter(prefix + field.name, default, descriptor)
        try:
            value = node.get_parameter(prefix + field.name).value
        except ParameterUninitializedException:
            value = None
        if is_array:
            value = list(value) if value is not None else []
            if elem is float:
                value = [_as_float(prefix + field.name, v) for v in value]
            if typing.get_origin(hint) is tuple or hint is tuple:
                value = tuple(value)
        elif elem is float:
            value = _as_float(prefix + field.name, value)
        values[field.name] = value
    try:
        return config_cls(**values)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{node.get_name()}: invalid parameters: {exc}") from exc
