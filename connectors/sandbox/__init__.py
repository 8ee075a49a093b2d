"""Local fake providers that speak the real wire formats over HTTP (DESIGN.md §6).

`app.build_app` composes them on one Starlette app; `serve.run_in_thread` serves it with uvicorn
in a background thread for tests and the demo.
"""
