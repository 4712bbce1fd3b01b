"""photo_sorter: `python main.py [FOLDER ...]` opens the app; `python main.py --headless COMMAND ...` runs batch mode."""

import sys

from photo_sorter.app import main

if __name__ == "__main__":
    sys.exit(main())
