"""The continust engine: settings, event envelope and codecs, topic merging, validation and
dead letters, HTTP API, metrics and the command line."""
