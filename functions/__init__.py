"""One package per Lambda function (serverless.yml). The runtime imports this package before any
handler module: in AWS that is where the function's secret is loaded (shared/secrets.py)."""

import sys
import types


def _without_pydantic_plugin_discovery() -> None:
    """pydantic looks for plugins when it builds its first model: it imports importlib.metadata
    (with email, zipfile, csv, ...) and reads the entry points of every installed distribution,
    10-15 ms of a handler's cold import. No function uses a pydantic plugin, and pydantic's
    own switch (PYDANTIC_DISABLE_PLUGINS) skips the search but not those imports, so the loader
    module is replaced by one that finds no plugins."""
    if "pydantic.plugin._loader" not in sys.modules:
        loader = types.ModuleType("pydantic.plugin._loader")
        loader.get_plugins = lambda: ()  # type: ignore[attr-defined]
        sys.modules["pydantic.plugin._loader"] = loader


_without_pydantic_plugin_discovery()

from shared.secrets import load_at_cold_start  # noqa: E402

load_at_cold_start()
