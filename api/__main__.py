"""`python -m api`: serve the API with the settings from the environment."""

from api.app import serve
from tradestream.config import load_settings

serve(load_settings())
