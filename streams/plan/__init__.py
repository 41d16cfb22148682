"""The pipeline plan and the records it reads and writes: the pipeline file and worker settings
(validated specs), durations, the event envelope (key, time, payload), causation headers, dead
letters, and the errors the engine reports to users."""
