"""PyInstaller's entry script: runs the same `main` as the `segviewer` gui-script."""

import sys

from segviewer.ui.app import main

sys.exit(main())
