from dlcc.cli import main

raise SystemExit(main())
