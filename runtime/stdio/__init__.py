"""A process's stdio as conmon serves it, in the form the runtime and its clients share."""
