"""``python -m brw``: the command line."""

from brw.cli import main

raise SystemExit(main())
