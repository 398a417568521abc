"""A WSGI app served by gunicorn, the one PyPI dependency (hosting detects it and starts it)."""


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello from python-wsgi\n"]
