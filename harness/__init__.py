"""Run the suite as processes: Kafka and Redis through the project's own scripts, services as child processes.

Shared by the tests and by `bench/` (which must not import from `tests/`)."""
