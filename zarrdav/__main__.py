from zarrdav.cli import main

raise SystemExit(main())
