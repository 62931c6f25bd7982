"""Reports written to files: the post-campaign review (HTML with charts, JSON, CSV)."""
