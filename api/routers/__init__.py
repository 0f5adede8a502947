"""The API's routes, one module per area (FastAPI "bigger applications" style)."""
