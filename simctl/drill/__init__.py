"""Game-day drills: a conductor runs a scenario in the background while a team responds.

docs/drills.md is the user's guide; the folder layout and the timeline entries are the
contract between the conductor (state, timeline, conductor, recorder, conceal) and the
scoring and reports that read a finished drill.
"""
