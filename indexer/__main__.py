"""`python -m indexer`: the indexer service on `INDEXER__PORT` (default 8003)."""

from __future__ import annotations

import uvicorn

from indexer.settings import get_settings


def main() -> None:
    settings = get_settings()
    uvicorn.run(
        "indexer.main:app",
        host="0.0.0.0",  # noqa: S104 - a container's port; scripts/up.sh binds loopback with --host
        port=settings.indexer.port,
        log_level=settings.log_level.lower(),
        server_header=False,
    )


if __name__ == "__main__":
    main()
