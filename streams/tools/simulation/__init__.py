"""The demo simulator behind ``kpimon simulate``, one job per module.

``model``     the cast and the rules: roster, rates, clocks, campaigns, the Kafka message of an event
``world``     what a root event brings with it (fields and follow-ups), shared by both worlds
``live``      ``Simulation``: live events at a target rate, the funnel compressed to minutes
``history``   ``History``: weeks of past events at a realistic volume, a pure function of the time slots
``producer``  ``run_simulation``: the history as fast as the broker takes it, then live, with progress

All but ``producer`` are pure: time is passed in.
"""
