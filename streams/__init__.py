"""The continust engine: settings, event envelope and codecs, topic merging, validation and
dead letters, HTTP API, metrics, the local broker and the event generator. Imports ``windows``,
never ``agents``."""
