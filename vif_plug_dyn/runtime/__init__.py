"""The runtime: cables plugged, moved and unplugged while guests run, the
guest link state that follows them, and the watcher that heals the host
side when host interfaces come and go."""
