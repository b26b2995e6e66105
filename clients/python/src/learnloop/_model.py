"""The base class of the generated models.

A model reads like the JSON it came from as well as by attribute:
``answer["pick"]`` and ``answer.pick`` are the same value (keys are the wire
names, aliases included), ``"pick" in answer`` and ``answer.get("pick")``
work, and fields the document does not declare (a newer server) are kept
and readable by key. Code written against an untyped answer (a ``dict``)
keeps working when the document types it.
"""

from __future__ import annotations

from typing import Any, Iterator

from pydantic import BaseModel, ConfigDict

__all__ = ["Model"]

_MISSING = object()


class Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    def _lookup(self, key: str) -> Any:
        for name, info in type(self).model_fields.items():
            if (info.alias or name) == key:
                return getattr(self, name)
        extra = self.__pydantic_extra__ or {}
        return extra.get(key, _MISSING)

    def __getitem__(self, key: str) -> Any:
        value = self._lookup(key)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        value = self._lookup(key)
        return default if value is _MISSING else value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._lookup(key) is not _MISSING

    def keys(self) -> Iterator[str]:
        """The wire names of the fields that are set, and of the extra fields."""
        return iter(self.model_dump(by_alias=True, exclude_unset=True).keys())
