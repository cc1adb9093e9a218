"""The kpimon contract: event models, the KPI catalog and the config file models.

Pure and I/O-free apart from reading the files it is pointed at; imports nothing
else of kpimon.
"""
