"""``ign serve``: the Python API over HTTP (FastAPI on uvicorn), with bearer-token scopes.

FastAPI because the answers already are pydantic models: they become the response models and
the OpenAPI document as they are, and request bodies are validated by the same records the
Python API parses. uvicorn is its standard ASGI server.
"""

from deploylearn.service.app import create_app

__all__ = ["create_app"]
