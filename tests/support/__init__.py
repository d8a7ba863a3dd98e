"""Helpers shared by the tests; fixtures that use them live in tests/conftest.py.

- `environment`: this run's Redis key prefix, skipping (or failing in CI) without a service.
- `servers`: real daphne, uvicorn and runserver processes, and a private Redis.
- `database`: the test database as child processes and other connections see it.
- `client`: the one WebSocket chat client, over a real socket or Channels' communicator.
- `resilient`: a client that behaves like the page (outbox, reconnect, gap repair).

Test modules import from here, never from one another (tests/test_layout.py checks it).
"""
