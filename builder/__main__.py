"""``python -m builder``: see builder.cli."""

from builder.cli import main

raise SystemExit(main())
