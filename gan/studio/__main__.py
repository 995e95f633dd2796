"""python -m gan.studio: see gan/studio/main.py."""
import sys

from gan.studio.main import main

if __name__ == '__main__':
  sys.exit(main())
