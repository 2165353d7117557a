"""The REST API: FastAPI routers under /v1, one module per resource (routes/)."""
