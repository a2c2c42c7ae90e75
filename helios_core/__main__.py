from helios_core.cli import main

raise SystemExit(main())
