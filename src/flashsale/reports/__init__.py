"""Reports written to files: the post-campaign review (HTML with charts, JSON, CSV) and its sections."""

import matplotlib

# Files only: never a display, whatever the environment says. Here, before any module of the
# package imports pyplot, which picks its backend on import.
matplotlib.use("Agg")
