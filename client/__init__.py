"""The Python client of the gro API: HTTP only, no gro_core or server code.

from client import GroClient
client = GroClient.from_config()          # GRO_API_URL / GRO_API_KEY, or ~/.config/gro/config
"""

from client.http import ApiError, GroClient, read_config, write_config

__all__ = ["ApiError", "GroClient", "read_config", "write_config"]
