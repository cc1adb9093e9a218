"""Commands around the worker: the CLI, the simulator, replay of files, reference docs and dashboards."""
