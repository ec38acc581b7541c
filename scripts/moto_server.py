"""moto's DynamoDB/Scheduler server, handling one request at a time.

DynamoDB makes every conditional write atomic and every transaction
serializable. moto's stock server is threaded and its in-memory model has
no lock, so two concurrent requests can interleave inside it (a stale
conditional update can land after a transaction it should have failed
against). Cairn's racing-driver tests must exercise Cairn's races, not
moto's, so this wrapper serializes request handling behind one lock while
keeping HTTP keep-alive and concurrent connections.

Usage: moto_server.py HOST PORT
"""

import sys
import threading

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app


class Serialized:
    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self.lock:
            return list(self.app(environ, start_response))


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, Serialized(app), threaded=True)


if __name__ == "__main__":
    main()
