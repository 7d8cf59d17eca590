"""What the pyengine and pyctr CLIs share; imports neither daemon, so the pyengine CLI stays installable alone."""
