"""`python -m api`: serve the API with the settings from the environment."""

from api.app import serve
from tradestream.config import ConfigError, load_settings
from tradestream.logging import configure_logging

try:
    settings = load_settings()
except ConfigError as exc:
    raise SystemExit(str(exc)) from None
configure_logging(settings.log_level, service="api")
serve(settings)
