"""The HTTP API (FastAPI): `main.create_app` builds it; routers per audience in `shop/` and `admin/`."""
