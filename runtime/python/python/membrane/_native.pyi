"""Type hints of the native module (runtime/python/src). Use it through ``membrane``."""

import asyncio
import pathlib
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, final

__all__ = ["App", "Call", "Inbox", "KINDS", "Runtime", "default_cache_dir"]

#: The stable name of every error kind (``membrane::ErrorKind::as_str``).
KINDS: List[str]

def default_cache_dir() -> Optional[pathlib.Path]: ...

@final
class Runtime:
    def __new__(
        cls,
        cache_dir: Optional[str] = None,
        *,
        fuel: bool = False,
        instance_slots: Optional[int] = None,
        max_wasm_stack: Optional[int] = None,
        metrics: bool = True,
    ) -> Runtime: ...
    def load(self, manifest: str) -> App: ...
    def load_spec(self, spec: Dict[str, Any]) -> App: ...
    def provide(
        self,
        name: str,
        funcs: Sequence[Tuple[str, str, Callable[..., Any]]],
        resources: Sequence[Tuple[str, type]] = ...,
    ) -> None: ...

@final
class App:
    def call(self, module: str, export: str, *args: Any) -> Any: ...
    def start_call(
        self,
        module: str,
        export: str,
        args: Tuple[Any, ...],
        inbox: Inbox,
        future: "asyncio.Future[Any]",
    ) -> Call: ...
    def run(self, args: List[str] = ...) -> int: ...
    def modules(self) -> List[str]: ...
    def signature(self, module: str, export: str) -> str: ...
    def export_name(self, module: str, export: str) -> str: ...

@final
class Call:
    def cancel(self) -> None: ...
    def done(self) -> bool: ...

@final
class Inbox:
    def __new__(cls) -> Inbox: ...
    def fileno(self) -> Optional[int]: ...
    def use_call_soon(self) -> None: ...
    def drain(self) -> None: ...
