"""Training methods, registered by name (`config.method`); the interface is `base.Method`.

    from jaxfaces import methods
    methods.register("my_method", MY_METHOD)   # a `base.Method`, from any package

`config.method` is a registered name, or "package.module:ATTRIBUTE" naming a `Method` in an
importable module (imported and registered on first use: a checkpoint of a method defined
outside jaxfaces then translates and evaluates in a new process). Built-in methods are
imported when first asked for. Neural style transfer (`methods/nst.py`) trains nothing and is
a mode of translate.py, not a registered method.
"""

import importlib

from jaxfaces.methods.base import Method

#: Built-in methods: name -> "module:attribute", imported on first use.
BUILTIN = {
    "bicyclegan": "jaxfaces.methods.bicyclegan:METHOD",
    "cyclegan": "jaxfaces.methods.cyclegan:METHOD",
    "cyclegan_vae": "jaxfaces.methods.cyclegan_vae:METHOD",
    "dtn": "jaxfaces.methods.dtn:METHOD",
    "lft": "jaxfaces.methods.lft:METHOD",
    "pix2pix": "jaxfaces.methods.pix2pix:METHOD",
    "unit": "jaxfaces.methods.unit:METHOD",
}
_REGISTRY: dict[str, Method] = {}


def register(name: str, method: Method) -> Method:
    """Registers `method` under `name` (replacing an earlier one of that name); returns it."""
    if not isinstance(method, Method):
        raise TypeError(f"register({name!r}, ...) needs a jaxfaces.methods.base.Method")
    _REGISTRY[name] = method
    return method


def _import(name: str, where: str) -> Method:
    module_name, _, attribute = where.partition(":")
    try:
        method = getattr(importlib.import_module(module_name), attribute or "METHOD")
    except (ImportError, AttributeError) as e:
        raise ValueError(f"config.method {name!r}: cannot import {where!r} ({e})") from e
    return register(name, method)


def get_method(name: str) -> Method:
    """The method registered under `name`, importing it if it is built in or a
    "module:attribute" path; ValueError listing the valid names otherwise."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name in BUILTIN:
        return _import(name, BUILTIN[name])
    if ":" in name:
        return _import(name, name)
    valid = sorted({*BUILTIN, *_REGISTRY})
    raise ValueError(
        f"unknown config.method {name!r}; valid: {', '.join(valid)} "
        "(or 'package.module:ATTRIBUTE' naming a jaxfaces.methods.base.Method)"
    )
