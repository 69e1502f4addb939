"""``python -m vif_plug_dyn.demo``."""

import sys

from vif_plug_dyn.demo import story

sys.exit(story.main())
