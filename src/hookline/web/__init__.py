"""Server-rendered pages: the customer portal and the operator console.

A Starlette application mounted under the JSON API's ASGI app at a path prefix
(``api.app.HooklineApp``): templates, static files, forms and sessions are what Starlette
and Jinja2 are for, while the JSON API keeps its small fast core. Pages call
``hookline.operations``, never the store. Templates and static files ship inside the wheel,
so ``pip install`` needs no Node.
"""

from hookline.web.app import PORTAL_PREFIX, PREFIXES, ROOTS, create_web_app

__all__ = ["PORTAL_PREFIX", "PREFIXES", "ROOTS", "create_web_app"]
