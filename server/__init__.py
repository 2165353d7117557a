"""The gro API: FastAPI routes, services, the database layer and settings (no worker code)."""
