"""Allow ``python -m qcos_sdk`` as an alias of the ``qcos`` console script."""

from .cli import main

raise SystemExit(main())
