from votesvc.cli import main

raise SystemExit(main())
