"""The PySide6 desktop app: a thin layer over the core (scan, query, clusters, selection, training).

Nothing here decides what a photo contains; it shows what the core returns and runs the core's
long calls in worker threads so the window never freezes.
"""
