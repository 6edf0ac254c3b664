from connector_proxy.cli import main

raise SystemExit(main())
