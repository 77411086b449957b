"""`python -m aigc_studio.cli` is the same as the `aigc-studio` command."""

from aigc_studio.cli import main

raise SystemExit(main())
