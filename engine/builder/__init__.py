"""The image builder: the Dockerfile front end (`dockerfile/`) and what runs its instructions."""
